# The Debian package (deploy/README.md): `cpack` in a build tree writes
# switchyard_<version>_<arch>.deb holding the binary, every plugin, the plugin
# SDK (headers, pkg-config files, the CMake package, the .proto files) and, for
# the service, /etc/switchyard/config.yaml (a conffile), the systemd unit and the
# maintainer scripts of deploy/debian (the `switchyard` system user).
#
# The service's files have absolute destinations (/etc, /lib/systemd) and are in
# the component `service`, which a plain `cmake --install` leaves out
# (EXCLUDE_FROM_ALL): installing into a prefix never writes /etc. CPack installs
# every component into the one package.

set(SY_SYSTEMD_UNIT_DIR "/lib/systemd/system" CACHE PATH
    "Where the package puts switchyard.service (Debian 12: /lib/systemd/system)")

install(FILES ${PROJECT_SOURCE_DIR}/deploy/config.yaml
        DESTINATION /etc/switchyard COMPONENT service EXCLUDE_FROM_ALL)
install(FILES ${PROJECT_SOURCE_DIR}/deploy/systemd/switchyard.service
        DESTINATION ${SY_SYSTEMD_UNIT_DIR} COMPONENT service EXCLUDE_FROM_ALL)
install(FILES ${PROJECT_SOURCE_DIR}/docs/operations.md
        DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/switchyard COMPONENT service EXCLUDE_FROM_ALL)
install(FILES ${PROJECT_SOURCE_DIR}/deploy/README.md
        DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/switchyard RENAME deploy.md
        COMPONENT service EXCLUDE_FROM_ALL)

set(CPACK_GENERATOR "DEB")
set(CPACK_PACKAGE_NAME "switchyard")
set(CPACK_PACKAGE_VENDOR "Switchyard")
set(CPACK_PACKAGE_CONTACT "Switchyard maintainers <switchyard@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "telemetry router with OpenTelemetry Collector configuration")
set(CPACK_PACKAGE_DESCRIPTION
    "Switchyard receives, processes and exports traces, metrics and logs as the\n\
OpenTelemetry Collector does, from the same YAML configuration, with plugins\n\
loaded as shared objects. This package holds the router, its plugins, the\n\
plugin SDK and a systemd service running as the switchyard user.")
set(CPACK_PACKAGING_INSTALL_PREFIX "/usr")
set(CPACK_STRIP_FILES ON)
# One package for every install component (the runtime, the SDK, the service).
get_cmake_property(SY_INSTALL_COMPONENTS COMPONENTS)
set(CPACK_COMPONENTS_ALL ${SY_INSTALL_COMPONENTS})
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_GROUPING ALL_COMPONENTS_IN_ONE)

set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION "net")
set(CPACK_DEBIAN_PACKAGE_PRIORITY "optional")
# Depends from the ELF files (dpkg-shlibdeps, in dpkg-dev; CPack finds the ELF
# files with `file`); where either tool is missing, the Debian 12 libraries the
# binary and the plugins link, without versions.
find_program(SY_DPKG_SHLIBDEPS dpkg-shlibdeps)
find_program(SY_FILE_UTILITY file)
# adduser is what the maintainer scripts call; CPack appends the computed list.
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser")
if(SY_DPKG_SHLIBDEPS AND SY_FILE_UTILITY)
  set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
else()
  message(STATUS "dpkg-shlibdeps or file missing: the package's Depends is a fixed list")
  string(APPEND CPACK_DEBIAN_PACKAGE_DEPENDS
         ", libc6, libuv1, libyaml-0-2, libprotobuf-c1, libyajl2, zlib1g, libzstd1, libnghttp2-14, libcurl4, libssl3, libpcre2-8-0, libdeflate0, libsnappy1v5, libcrypt1")
endif()
# deb-systemd-helper enables the unit where it is installed (Debian's default).
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "init-system-helpers")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${PROJECT_SOURCE_DIR}/deploy/debian/conffiles
    ${PROJECT_SOURCE_DIR}/deploy/debian/postinst
    ${PROJECT_SOURCE_DIR}/deploy/debian/prerm
    ${PROJECT_SOURCE_DIR}/deploy/debian/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)

include(CPack)
