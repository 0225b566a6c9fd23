# iotca-signer against its sockets, with a real daemon started by devstack.
add_executable(test_signer_socket ${CMAKE_CURRENT_SOURCE_DIR}/test_signer_socket.c)
target_link_libraries(test_signer_socket PRIVATE iotca_casvc_client PkgConfig::CMOCKA)
set_target_properties(test_signer_socket PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)

add_test(NAME signer-socket
	COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/signer-socket.sh
		${CMAKE_BINARY_DIR}/tests/test_signer_socket)
set_tests_properties(signer-socket PROPERTIES
	ENVIRONMENT "IOTCA_BIN=${CMAKE_BINARY_DIR}/bin;IOTCA_SRC=${CMAKE_SOURCE_DIR}"
	TIMEOUT 120 SKIP_RETURN_CODE 77)

add_test(NAME signer-approvals
	COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/test_approvals.py)
set_tests_properties(signer-approvals PROPERTIES
	ENVIRONMENT "IOTCA_BIN=${CMAKE_BINARY_DIR}/bin;IOTCA_SRC=${CMAKE_SOURCE_DIR}"
	TIMEOUT 180)

add_executable(test_config ${CMAKE_CURRENT_SOURCE_DIR}/test_config.c)
target_link_libraries(test_config PRIVATE iotca_casvc_client iotca_config_key PkgConfig::CMOCKA)
set_target_properties(test_config PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
add_test(NAME config COMMAND ${CMAKE_BINARY_DIR}/tests/test_config)

add_test(NAME signer-listings
	COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/test_listings.py)
set_tests_properties(signer-listings PROPERTIES
	ENVIRONMENT "IOTCA_BIN=${CMAKE_BINARY_DIR}/bin;IOTCA_SRC=${CMAKE_SOURCE_DIR}"
	TIMEOUT 180)

add_test(NAME signer-budgets
	COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/test_budgets.py)
set_tests_properties(signer-budgets PROPERTIES
	ENVIRONMENT "IOTCA_BIN=${CMAKE_BINARY_DIR}/bin;IOTCA_SRC=${CMAKE_SOURCE_DIR}"
	TIMEOUT 180)

# No key reuse and the CSR key error type, on admin.sock, signer.sock and ACME.
add_test(NAME signer-key-reuse
	COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/test_key_reuse.py)
set_tests_properties(signer-key-reuse PROPERTIES
	ENVIRONMENT "IOTCA_BIN=${CMAKE_BINARY_DIR}/bin;IOTCA_SRC=${CMAKE_SOURCE_DIR}"
	TIMEOUT 180)

# An approval covers the device's own names; the notify command.
add_test(NAME signer-notify
	COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/test_notify.py)
set_tests_properties(signer-notify PROPERTIES
	ENVIRONMENT "IOTCA_BIN=${CMAKE_BINARY_DIR}/bin;IOTCA_SRC=${CMAKE_SOURCE_DIR}"
	TIMEOUT 180)

# Delegation of a DNS subtree to an account (RFC 9444, integrations draft).
add_test(NAME signer-delegation
	COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/test_delegation.py)
set_tests_properties(signer-delegation PROPERTIES
	ENVIRONMENT "IOTCA_BIN=${CMAKE_BINARY_DIR}/bin;IOTCA_SRC=${CMAKE_SOURCE_DIR}"
	TIMEOUT 180)

# The CRL past the 64 KiB record limit (pages of DER), one CRL per burst of
# revocations, CRL numbers that only grow.
add_test(NAME signer-crl-large
	COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/test_crl_large.py)
set_tests_properties(signer-crl-large PROPERTIES
	ENVIRONMENT "IOTCA_BIN=${CMAKE_BINARY_DIR}/bin;IOTCA_SRC=${CMAKE_SOURCE_DIR}"
	TIMEOUT 180)

# signer.db's lookups stay indexed as devices grow; a v4 file gains the
# index at start (issue 15, item 3).
add_test(NAME signer-db-indexes
	COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/test_signerdb_indexes.py)
set_tests_properties(signer-db-indexes PROPERTIES
	ENVIRONMENT "IOTCA_BIN=${CMAKE_BINARY_DIR}/bin;IOTCA_SRC=${CMAKE_SOURCE_DIR}"
	TIMEOUT 120)

# A key as slow as a TPM chip (the test TCTI holds each TPM2_Sign 200 ms):
# operators are answered while certificates wait for the key, and what is
# checked before signing holds with certificates in flight.
add_test(NAME signer-keypaced
	COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/test_keypaced.py)
set_tests_properties(signer-keypaced PROPERTIES
	ENVIRONMENT "IOTCA_BIN=${CMAKE_BINARY_DIR}/bin;IOTCA_SRC=${CMAKE_SOURCE_DIR};IOTCA_TCTI_DIR=${CMAKE_BINARY_DIR}/tests"
	TIMEOUT 120)
