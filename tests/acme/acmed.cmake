# iotca-acmed end to end (included from tests/acme/CMakeLists.txt): real
# daemons through devstack, on loopback only.
foreach(part protocol lego tls config expiry)
  add_test(NAME acmed-${part}
           COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/acmed.sh ${part})
  set_tests_properties(acmed-${part} PROPERTIES
    ENVIRONMENT "IOTCA_BIN=${CMAKE_BINARY_DIR}/bin;IOTCA_SRC=${CMAKE_SOURCE_DIR}"
    TIMEOUT 300 SKIP_RETURN_CODE 77 RUN_SERIAL TRUE)
endforeach()

# The account-key cache on its own (cmocka).
add_executable(test_keycache ${CMAKE_CURRENT_LIST_DIR}/test_keycache.c)
target_link_libraries(test_keycache PRIVATE iotca_acmed PkgConfig::CMOCKA)
set_target_properties(test_keycache PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
add_test(NAME acme-keycache COMMAND test_keycache)

# RFC 9773 identifiers: GnuTLS's reading (at issuance) and OpenSSL's
# (renewalInfo, revocation) agree (cmocka).
add_executable(test_certid ${CMAKE_CURRENT_LIST_DIR}/test_certid.c)
target_link_libraries(test_certid PRIVATE iotca_acmed PkgConfig::CMOCKA)
set_target_properties(test_certid PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
add_test(NAME acme-certid COMMAND test_certid)

# The rate limiter's token buckets on their own (cmocka).
add_executable(test_ratelimit ${CMAKE_CURRENT_LIST_DIR}/test_ratelimit.c)
target_link_libraries(test_ratelimit PRIVATE iotca_acmed PkgConfig::CMOCKA)
set_target_properties(test_ratelimit PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
add_test(NAME acme-ratelimit COMMAND test_ratelimit)

# iotca-acmed killed (SIGKILL) between the signer's answer and its commit:
# the order ends valid with that certificate, no second one, no orphan.
add_test(NAME acmed-crash
         COMMAND python3 ${CMAKE_CURRENT_LIST_DIR}/acmed_crash.py)
set_tests_properties(acmed-crash PROPERTIES
  ENVIRONMENT "IOTCA_BIN=${CMAKE_BINARY_DIR}/bin;IOTCA_SRC=${CMAKE_SOURCE_DIR}"
  TIMEOUT 180 RUN_SERIAL TRUE)

# A hostile LAN (tests/acme/acmed_limits.py): 2,000 idle connections from
# 100 addresses, the rate limits of newAccount, newOrder and finalize, and
# what a held TLS connection costs and a request may carry (tlsmem).
foreach(part idle ratelimit tlsmem)
  add_test(NAME acmed-limits-${part}
           COMMAND python3 ${CMAKE_CURRENT_LIST_DIR}/acmed_limits.py ${part})
  set_tests_properties(acmed-limits-${part} PROPERTIES
    ENVIRONMENT "IOTCA_BIN=${CMAKE_BINARY_DIR}/bin;IOTCA_SRC=${CMAKE_SOURCE_DIR}"
    TIMEOUT 120 SKIP_RETURN_CODE 77 RUN_SERIAL TRUE)
endforeach()

# Pre-authorization (tests/acme/acmed_preauth.py): newAuthz, RFC 9444
# subdomain authorizations validated by dns-01 against a loopback BIND, and
# the reuse of valid authorizations by later orders.
add_test(NAME acmed-preauth
         COMMAND python3 ${CMAKE_CURRENT_LIST_DIR}/acmed_preauth.py)
set_tests_properties(acmed-preauth PROPERTIES
  ENVIRONMENT "IOTCA_BIN=${CMAKE_BINARY_DIR}/bin;IOTCA_SRC=${CMAKE_SOURCE_DIR}"
  TIMEOUT 180 RUN_SERIAL TRUE)

# Delegation through real ACME (tests/acme/acmed_delegation.py): an order
# covered by a subdomain authorization asks the operator for the subtree
# once; per-name orders still ask per device.
add_test(NAME acmed-delegation
         COMMAND python3 ${CMAKE_CURRENT_LIST_DIR}/acmed_delegation.py)
set_tests_properties(acmed-delegation PROPERTIES
  ENVIRONMENT "IOTCA_BIN=${CMAKE_BINARY_DIR}/bin;IOTCA_SRC=${CMAKE_SOURCE_DIR}"
  TIMEOUT 180 SKIP_RETURN_CODE 77 RUN_SERIAL TRUE)

# The CRL and the root over plain HTTP and HTTPS (types, ETag, 304), named
# in device certificates; openssl verify -crl_check as the relying party.
add_test(NAME acmed-crl-http
         COMMAND python3 ${CMAKE_CURRENT_LIST_DIR}/acmed_crl_http.py)
set_tests_properties(acmed-crl-http PROPERTIES
  ENVIRONMENT "IOTCA_BIN=${CMAKE_BINARY_DIR}/bin;IOTCA_SRC=${CMAKE_SOURCE_DIR}"
  TIMEOUT 120)

# acme.db pruned at start (and hourly): old orders, authorizations,
# challenges and expired certificates go; what clients still use stays.
add_test(NAME acmed-prune
         COMMAND python3 ${CMAKE_CURRENT_LIST_DIR}/acmed_prune.py)
set_tests_properties(acmed-prune PROPERTIES
  ENVIRONMENT "IOTCA_BIN=${CMAKE_BINARY_DIR}/bin;IOTCA_SRC=${CMAKE_SOURCE_DIR}"
  TIMEOUT 180 RUN_SERIAL TRUE)
