# Installs the build into PREFIX and checks the layout and that the installed
# binary finds the installed plugins with no flag and no environment.
file(REMOVE_RECURSE "${PREFIX}")
execute_process(COMMAND ${CMAKE_COMMAND} --install "${BUILD_DIR}" --prefix "${PREFIX}"
                RESULT_VARIABLE rc OUTPUT_QUIET)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "cmake --install failed: ${rc}")
endif()
foreach(f bin/switchyard ${INCLUDE_DIR}/switchyard/plugin.h ${PLUGIN_DIR}/receiver_otlp.so
          ${PLUGIN_DIR}/sy_tls.so ${PLUGIN_DIR}/processor_batch.so
          ${PLUGIN_DIR}/exporter_debug.so)
  if(NOT EXISTS "${PREFIX}/${f}")
    message(FATAL_ERROR "missing from the install tree: ${f}")
  endif()
endforeach()
file(GLOB pcs "${PREFIX}/lib*/pkgconfig/switchyard.pc" "${PREFIX}/lib/*/pkgconfig/switchyard.pc")
if(NOT pcs)
  message(FATAL_ERROR "missing from the install tree: switchyard.pc")
endif()
set(ENV{SWITCHYARD_PLUGIN_PATH} "")
execute_process(COMMAND "${PREFIX}/bin/switchyard" components
                OUTPUT_VARIABLE out RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "switchyard components failed (${rc}):\n${out}")
endif()
string(FIND "${out}" "${PREFIX}/${PLUGIN_DIR}/receiver_otlp.so" at)
if(at EQUAL -1)
  message(FATAL_ERROR "the installed binary did not find the installed plugins:\n${out}")
endif()
# The SDK is relocatable: everything below uses the prefix alone. A plugin
# builds outside the tree against the installed SDK twice, once with pkg-config
# (PKG_CONFIG_PATH=<prefix>/<libdir>/pkgconfig and nothing else) and once with
# CMake (find_package(Switchyard), CMAKE_PREFIX_PATH=<prefix> only), and both
# are loaded by the installed binary.
set(ext "${PREFIX}/external")
file(MAKE_DIRECTORY "${ext}")
find_program(PKG_CONFIG pkg-config REQUIRED)
file(GLOB pcdirs LIST_DIRECTORIES true "${PREFIX}/lib*/pkgconfig" "${PREFIX}/lib/*/pkgconfig")
list(GET pcdirs 0 pcdir)
foreach(pcname switchyard-plugin switchyard)
  if(NOT EXISTS "${pcdir}/${pcname}.pc")
    message(FATAL_ERROR "missing from the install tree: ${pcname}.pc in ${pcdir}")
  endif()
endforeach()
set(ENV{PKG_CONFIG_PATH} "${pcdir}")
set(ENV{PKG_CONFIG_LIBDIR} "${pcdir}")
unset(ENV{PKG_CONFIG_SYSROOT_DIR})
execute_process(COMMAND ${PKG_CONFIG} --cflags --libs switchyard-plugin
                OUTPUT_VARIABLE pcflags RESULT_VARIABLE rc ERROR_VARIABLE err
                OUTPUT_STRIP_TRAILING_WHITESPACE)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "pkg-config --cflags --libs switchyard-plugin failed:\n${err}")
endif()
# The include directory named must be the installed one, whatever the prefix
# was at configure time (CMAKE_INSTALL_PREFIX of the build is not PREFIX).
string(REGEX MATCH "-I([^ ]+)" _ "${pcflags}")
set(pcinc "${CMAKE_MATCH_1}")
if(NOT pcinc OR NOT EXISTS "${pcinc}/switchyard/plugin.h")
  message(FATAL_ERROR "pkg-config names no include directory holding switchyard/plugin.h: ${pcflags}")
endif()
file(REAL_PATH "${pcinc}" pcinc_real)
file(REAL_PATH "${PREFIX}/${INCLUDE_DIR}" inc_real)
if(NOT pcinc_real STREQUAL inc_real)
  message(FATAL_ERROR "pkg-config's include directory ${pcinc} is not the prefix's ${inc_real}")
endif()
foreach(want -fPIC -fvisibility=hidden -shared)
  string(FIND " ${pcflags} " " ${want} " at)
  if(at EQUAL -1)
    message(FATAL_ERROR "pkg-config --cflags --libs switchyard-plugin lacks ${want}: ${pcflags}")
  endif()
endforeach()
execute_process(COMMAND ${PKG_CONFIG} --variable=plugindir switchyard-plugin
                OUTPUT_VARIABLE pcplugindir OUTPUT_STRIP_TRAILING_WHITESPACE)
file(REAL_PATH "${pcplugindir}" pcplugindir_real)
file(REAL_PATH "${PREFIX}/${PLUGIN_DIR}" plugindir_real)
if(NOT pcplugindir_real STREQUAL plugindir_real)
  message(FATAL_ERROR "pkg-config's plugindir ${pcplugindir} is not ${plugindir_real}")
endif()
execute_process(COMMAND ${PKG_CONFIG} --exists --print-errors switchyard
                RESULT_VARIABLE rc ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "the compatibility name switchyard.pc does not resolve:\n${err}")
endif()
separate_arguments(pcargs UNIX_COMMAND "${pcflags}")
execute_process(COMMAND cc -std=c11 -Wall -Wextra -Werror ${pcargs} -DSDKDEMO_TYPE="sdkpc"
                        ${SOURCE_DIR}/tests/sdk/sdkdemo.c -o ${ext}/processor_sdkpc.so
                RESULT_VARIABLE rc ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "building a plugin with pkg-config switchyard-plugin failed:\n${err}")
endif()
# The nop processor of the guide builds the same way.
execute_process(COMMAND cc -std=c11 -Wall -Wextra -Werror ${pcargs}
                        ${SOURCE_DIR}/plugins/processors/nop/nop.c -o ${ext}/processor_nop.so
                RESULT_VARIABLE rc ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "building the nop processor with pkg-config failed:\n${err}")
endif()
# CMake: a project of its own, configured with the prefix alone.
set(cmk "${PREFIX}/cmake-project")
execute_process(COMMAND ${CMAKE_COMMAND} -S ${SOURCE_DIR}/tests/sdk -B ${cmk}
                        -DCMAKE_PREFIX_PATH=${PREFIX} -DCMAKE_BUILD_TYPE=Release
                        -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "configuring a plugin project with find_package(Switchyard) failed:\n${out}\n${err}")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} --build ${cmk}
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0 OR NOT EXISTS "${cmk}/processor_sdkcmake.so")
  message(FATAL_ERROR "building with switchyard_add_plugin failed (${rc}):\n${out}\n${err}")
endif()
file(COPY "${cmk}/processor_sdkcmake.so" DESTINATION "${ext}")
# Only the entry symbol is exported by either build.
foreach(so processor_sdkpc processor_sdkcmake)
  execute_process(COMMAND nm -D --defined-only ${ext}/${so}.so OUTPUT_VARIABLE syms)
  string(REGEX MATCHALL "[^\n]+ T [^\n]+" exported "${syms}")
  if(NOT exported MATCHES "sy_plugin_entry" OR exported MATCHES "demo_")
    message(FATAL_ERROR "${so}.so exports more or less than sy_plugin_entry:\n${syms}")
  endif()
endforeach()
execute_process(COMMAND "${PREFIX}/bin/switchyard" components --plugin-dir "${ext}"
                OUTPUT_VARIABLE out RESULT_VARIABLE rc)
foreach(so processor_nop processor_sdkpc processor_sdkcmake)
  string(FIND "${out}" "${ext}/${so}.so" at)
  if(NOT rc EQUAL 0 OR at EQUAL -1)
    message(FATAL_ERROR "the out-of-tree plugin ${so} was not found first on the path:\n${out}")
  endif()
endforeach()
# The installed binary loads both and runs their validate(): a good limit passes,
# a bad one is refused with the plugin's own sentence.
foreach(limit 5 0)
  file(WRITE "${ext}/config.yaml" "receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:0
processors:
  sdkpc:
    limit: ${limit}
  sdkcmake:
    limit: ${limit}
    label: \"from cmake\"
exporters:
  debug:
service:
  pipelines:
    traces:
      receivers: [otlp]
      processors: [sdkpc, sdkcmake]
      exporters: [debug]
")
  execute_process(COMMAND "${PREFIX}/bin/switchyard" validate --config "${ext}/config.yaml"
                          --plugin-dir "${ext}"
                  OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
  if(limit EQUAL 5 AND NOT rc EQUAL 0)
    message(FATAL_ERROR "validate refused the out-of-tree plugins (${rc}):\n${out}${err}")
  elseif(limit EQUAL 0)
    if(rc EQUAL 0)
      message(FATAL_ERROR "validate accepted limit: 0, which both plugins refuse:\n${out}${err}")
    endif()
    foreach(id sdkpc sdkcmake)
      string(FIND "${err}" "'${id}': sdkdemo: limit must be at least 1, got 0" at)
      if(at EQUAL -1)
        message(FATAL_ERROR "validate did not report ${id}'s own refusal:\n${out}${err}")
      endif()
    endforeach()
  endif()
endforeach()
file(REMOVE_RECURSE "${PREFIX}")
message(STATUS "install layout ok")
