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
