# sy_add_plugin(<kind> <type> SOURCES <files...> [LIBS <libs...>])
#
# Builds one plugin as its own shared object named <kind>_<type>.so in the build
# tree's lib/switchyard/plugins/ (the same relative place as in the install tree),
# with hidden visibility so that the entry symbol is the only export.
function(sy_add_plugin kind type)
  cmake_parse_arguments(P "" "" "SOURCES;LIBS" ${ARGN})
  set(target "${kind}_${type}")
  add_library(${target} MODULE ${P_SOURCES})
  set_target_properties(${target} PROPERTIES
    PREFIX ""
    OUTPUT_NAME "${kind}_${type}"
    C_VISIBILITY_PRESET hidden
    LIBRARY_OUTPUT_DIRECTORY "${SY_PLUGIN_BUILD_DIR}")
  target_include_directories(${target} PRIVATE "${PROJECT_SOURCE_DIR}/include")
  target_link_libraries(${target} PRIVATE ${P_LIBS})
  install(TARGETS ${target} LIBRARY DESTINATION "${SY_PLUGIN_INSTALL_DIR}")
  set_property(GLOBAL APPEND PROPERTY SY_PLUGIN_TARGETS ${target})
endfunction()
