# What `cmake --install` puts where (GNU prefixes; docs/DEPLOYMENT.md):
#   bin/        lanspread, lanspread-peer-cli, lanspread-gen
#   share/lanspread/catalog.json   the sample catalog (also compiled in)
#   share/man/man1/                the man pages of docs/man/
#   share/doc/lanspread/           README, CLI, API, PROTOCOL, ARCHITECTURE
#   systemd units: the user unit lanspread.service and the system unit
#   lanspread-seeder.service, with its sysusers.d and tmpfiles.d entries,
#   its settings (SYSCONFDIR/lanspread/config.json) and the ufw profile.
# With the prefix /usr the systemd directories are systemd's own (from its
# pkg-config file); with any other prefix they are under the prefix.
include(GNUInstallDirs)

install(TARGETS app_lanspread app_lanspread-peer-cli lanspread-gen
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(FILES ${CMAKE_SOURCE_DIR}/data/catalog.json
        DESTINATION ${CMAKE_INSTALL_DATADIR}/lanspread)
install(FILES ${CMAKE_SOURCE_DIR}/README.md ${CMAKE_SOURCE_DIR}/docs/CLI.md
              ${CMAKE_SOURCE_DIR}/docs/API.md ${CMAKE_SOURCE_DIR}/docs/PROTOCOL.md
              ${CMAKE_SOURCE_DIR}/docs/ARCHITECTURE.md ${CMAKE_SOURCE_DIR}/docs/DEPLOYMENT.md
        DESTINATION ${CMAKE_INSTALL_DOCDIR})

# The man pages carry the version (@VERSION@ in docs/man/*.1).
set(VERSION ${PROJECT_VERSION})
foreach(page lanspread lanspread-peer-cli lanspread-gen)
  configure_file(${CMAKE_SOURCE_DIR}/docs/man/${page}.1 ${CMAKE_BINARY_DIR}/man/${page}.1 @ONLY)
  install(FILES ${CMAKE_BINARY_DIR}/man/${page}.1 DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
endforeach()

function(ls_systemd_dir var pkg_var fallback)
  set(dir "${CMAKE_INSTALL_PREFIX}/${fallback}")
  if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
    pkg_get_variable(from_systemd systemd ${pkg_var})
    if(from_systemd)
      set(dir ${from_systemd})
    endif()
  endif()
  set(${var} ${dir} CACHE PATH "Where the install puts ${fallback}")
endfunction()
ls_systemd_dir(LS_SYSTEMD_SYSTEM_DIR systemdsystemunitdir lib/systemd/system)
ls_systemd_dir(LS_SYSTEMD_USER_DIR systemduserunitdir lib/systemd/user)
ls_systemd_dir(LS_SYSUSERS_DIR sysusersdir lib/sysusers.d)
ls_systemd_dir(LS_TMPFILES_DIR tmpfilesdir lib/tmpfiles.d)

set(LS_INSTALL_BINDIR ${CMAKE_INSTALL_FULL_BINDIR})
set(LS_INSTALL_SYSCONFDIR ${CMAKE_INSTALL_FULL_SYSCONFDIR})
foreach(unit lanspread lanspread-seeder)
  configure_file(${CMAKE_SOURCE_DIR}/dist/systemd/${unit}.service.in
                 ${CMAKE_BINARY_DIR}/systemd/${unit}.service @ONLY)
endforeach()
install(FILES ${CMAKE_BINARY_DIR}/systemd/lanspread.service DESTINATION ${LS_SYSTEMD_USER_DIR})
install(FILES ${CMAKE_BINARY_DIR}/systemd/lanspread-seeder.service
        DESTINATION ${LS_SYSTEMD_SYSTEM_DIR})
install(FILES ${CMAKE_SOURCE_DIR}/dist/sysusers.conf DESTINATION ${LS_SYSUSERS_DIR}
        RENAME lanspread.conf)
install(FILES ${CMAKE_SOURCE_DIR}/dist/tmpfiles.conf DESTINATION ${LS_TMPFILES_DIR}
        RENAME lanspread.conf)
install(FILES ${CMAKE_SOURCE_DIR}/dist/lanspread-seeder.json
        DESTINATION ${CMAKE_INSTALL_FULL_SYSCONFDIR}/lanspread RENAME config.json)
install(FILES ${CMAKE_SOURCE_DIR}/dist/ufw/lanspread
        DESTINATION ${CMAKE_INSTALL_FULL_SYSCONFDIR}/ufw/applications.d)
