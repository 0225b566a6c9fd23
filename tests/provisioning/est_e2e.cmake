# iotca-est-ra end to end (tests/provisioning/test_est_e2e.py), included
# from tests/provisioning/CMakeLists.txt: curl and openssl as EST clients,
# the RA, devstack's signer and acmed, BIND on loopback (TSIG), Pebble;
# racert: the RA's own TLS certificate with id-kp-cmcRA from the appliance.
# Skipped (77) without BIND, or without Pebble for the pebble part.
foreach(part approval restart pebble tsig racert)
  add_test(NAME est-e2e-${part}
           COMMAND python3 ${CMAKE_CURRENT_LIST_DIR}/test_est_e2e.py ${part})
  set_tests_properties(est-e2e-${part} PROPERTIES
    ENVIRONMENT "IOTCA_BIN=${CMAKE_BINARY_DIR}/bin;IOTCA_SRC=${CMAKE_SOURCE_DIR}"
    TIMEOUT 240 SKIP_RETURN_CODE 77 RUN_SERIAL TRUE)
endforeach()
