# Installs the build into PREFIX and checks the layout and that the installed
# binary finds the installed plugins with no flag and no environment.
file(REMOVE_RECURSE "${PREFIX}")
execute_process(COMMAND ${CMAKE_COMMAND} --install "${BUILD_DIR}" --prefix "${PREFIX}"
                RESULT_VARIABLE rc OUTPUT_QUIET)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "cmake --install failed: ${rc}")
endif()
foreach(f bin/switchyard ${INCLUDE_DIR}/switchyard/plugin.h ${PLUGIN_DIR}/receiver_otlp.so
          ${PLUGIN_DIR}/otlp_tls.so ${PLUGIN_DIR}/processor_batch.so
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
# A plugin builds outside the tree against the installed header alone (the nop
# processor, as docs/plugin-guide.md shows) and is found through --plugin-dir.
set(ext "${PREFIX}/external")
file(MAKE_DIRECTORY "${ext}")
execute_process(COMMAND cc -std=c11 -Wall -Wextra -Werror -shared -fPIC -fvisibility=hidden
                        -I${PREFIX}/${INCLUDE_DIR} ${SOURCE_DIR}/plugins/processors/nop/nop.c
                        -o ${ext}/processor_nop.so
                RESULT_VARIABLE rc ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "building a plugin outside the tree failed:\n${err}")
endif()
execute_process(COMMAND "${PREFIX}/bin/switchyard" components --plugin-dir "${ext}"
                OUTPUT_VARIABLE out RESULT_VARIABLE rc)
string(FIND "${out}" "${ext}/processor_nop.so" at)
if(NOT rc EQUAL 0 OR at EQUAL -1)
  message(FATAL_ERROR "the out-of-tree plugin was not found first on the path:\n${out}")
endif()
file(REMOVE_RECURSE "${PREFIX}")
message(STATUS "install layout ok")
