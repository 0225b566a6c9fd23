# iotca-acmed: the network-facing ACME server (included from acme/CMakeLists.txt).
# Everything but main() is a library so tests can link the parts.
set(_d ${CMAKE_CURRENT_LIST_DIR})
add_library(iotca_acmed STATIC
  ${_d}/acmed_config.c ${_d}/acmedb.c ${_d}/auth.c ${_d}/certid.c
  ${_d}/contact.c ${_d}/http.c ${_d}/issue.c ${_d}/keycache.c ${_d}/listener.c ${_d}/nonce.c
  ${_d}/objects.c ${_d}/publish.c ${_d}/res_account.c ${_d}/res_authz.c ${_d}/res_cert.c
  ${_d}/res_directory.c ${_d}/res_order.c ${_d}/signercall.c ${_d}/tlscert.c
  ${_d}/vpool.c ${_d}/ratelimit.c ${_d}/workers.c)
target_include_directories(iotca_acmed PUBLIC ${_d})
target_link_libraries(iotca_acmed PUBLIC iotca_jws iotca_validate iotca_policy
  iotca_casvc_client PkgConfig::MHD PkgConfig::SYSTEMD PkgConfig::SQLITE
  PkgConfig::JANSSON PkgConfig::INIH PkgConfig::OPENSSL PkgConfig::GNUTLS
  Threads::Threads)

add_executable(iotca-acmed ${_d}/acmed.c)
target_link_libraries(iotca-acmed PRIVATE iotca_acmed)
install(TARGETS iotca-acmed DESTINATION ${CMAKE_INSTALL_SBINDIR})
