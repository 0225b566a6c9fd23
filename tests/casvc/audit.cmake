# The sealed audit log: the chain and its checks (cmocka, file anchor), and
# end to end with the real daemons, once with the TPM (swtpm behind
# tpm2-abrmd) and once with the file anchor.
add_executable(test_audit ${CMAKE_CURRENT_LIST_DIR}/test_audit.c)
target_link_libraries(test_audit PRIVATE iotca_audit iotca_keystore PkgConfig::CMOCKA)
set_target_properties(test_audit PROPERTIES
	RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
add_test(NAME audit-chain COMMAND test_audit)
set_tests_properties(audit-chain PROPERTIES TIMEOUT 120)

foreach(store tpm2 file)
	add_test(NAME signer-audit-${store}
		COMMAND python3 ${CMAKE_CURRENT_LIST_DIR}/test_audit.py ${store})
	set_tests_properties(signer-audit-${store} PROPERTIES
		ENVIRONMENT "IOTCA_BIN=${CMAKE_BINARY_DIR}/bin;IOTCA_SRC=${CMAKE_SOURCE_DIR}"
		TIMEOUT 300 SKIP_RETURN_CODE 77)
endforeach()

# Refusals aggregated per peer and interval: the table on its own (cmocka,
# made-up times), and a flood of 2,300 refusals against a real signer.
add_executable(test_refusals ${CMAKE_CURRENT_LIST_DIR}/test_refusals.c
	${CMAKE_SOURCE_DIR}/casvc/refusals.c)
target_link_libraries(test_refusals PRIVATE iotca_ca iotca_audit iotca_signerdb
	iotca_casvc_client PkgConfig::CMOCKA)
set_target_properties(test_refusals PROPERTIES
	RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
add_test(NAME audit-refusals-table COMMAND test_refusals)
add_test(NAME signer-audit-refusals
	COMMAND python3 ${CMAKE_CURRENT_LIST_DIR}/test_refusals.py)
set_tests_properties(signer-audit-refusals PROPERTIES
	ENVIRONMENT "IOTCA_BIN=${CMAKE_BINARY_DIR}/bin;IOTCA_SRC=${CMAKE_SOURCE_DIR}"
	TIMEOUT 120)
