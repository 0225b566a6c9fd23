# Tests for casvc/policy.c and casvc/devcert.c (included from CMakeLists.txt).
add_library(iotca_policy_testutil STATIC
            ${CMAKE_CURRENT_LIST_DIR}/policy_testutil.c)
target_include_directories(iotca_policy_testutil PUBLIC ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(iotca_policy_testutil PUBLIC PkgConfig::OPENSSL PkgConfig::CMOCKA)

add_executable(test_policy ${CMAKE_CURRENT_LIST_DIR}/test_policy.c)
target_link_libraries(test_policy PRIVATE iotca_ca iotca_policy_testutil PkgConfig::CMOCKA)
add_test(NAME policy-csr COMMAND test_policy)

add_executable(test_devcert ${CMAKE_CURRENT_LIST_DIR}/test_devcert.c)
target_link_libraries(test_devcert PRIVATE iotca_ca iotca_policy_testutil PkgConfig::CMOCKA)
add_test(NAME devcert-issue COMMAND test_devcert)
