# SY_CFG_FIELD() checks a member's C type against its SY_CFG_* type at compile
# time: each pair below is compiled alone (C11, -Wall -Wextra -Werror -pedantic)
# with every compiler given in COMPILERS; the right C types must build, the wrong
# ones must fail with the check's name in the error.
set(ok_pairs
  "SY_CFG_INT|int64_t" "SY_CFG_DURATION|int64_t" "SY_CFG_SIZE|uint64_t"
  "SY_CFG_DOUBLE|double" "SY_CFG_BOOL|bool" "SY_CFG_PRESENT|bool" "SY_CFG_STRING|char *"
  "SY_CFG_STRING|const char *" "SY_CFG_ENUM|int" "SY_CFG_STRLIST|sy_cfg_strlist_t"
  "SY_CFG_STRMAP|sy_cfg_strmap_t" "SY_CFG_RAW|const sy_cfg_node_t *")
set(bad_pairs
  "SY_CFG_INT|int" "SY_CFG_INT|uint64_t" "SY_CFG_SIZE|int64_t" "SY_CFG_DURATION|double"
  "SY_CFG_ENUM|int64_t" "SY_CFG_BOOL|int" "SY_CFG_DOUBLE|float" "SY_CFG_STRING|sy_cfg_strlist_t"
  "SY_CFG_RAW|char *" "SY_CFG_STRMAP|sy_cfg_strlist_t" "SY_CFG_PRESENT|int64_t"
  "SY_CFG_STRING|char ARRAY" "SY_CFG_INT|const int64_t")
string(REPLACE "," ";" COMPILERS "${COMPILERS}") # given comma-separated
file(MAKE_DIRECTORY "${WORK_DIR}")
set(n 0)
foreach(cc ${COMPILERS})
  foreach(expect ok bad)
    foreach(pair ${${expect}_pairs})
      string(REPLACE "|" ";" parts "${pair}")
      list(GET parts 0 cfgtype)
      list(GET parts 1 ctype)
      math(EXPR n "${n} + 1")
      set(src "${WORK_DIR}/field_${n}.c")
      set(decl "${ctype} member")
      if(ctype MATCHES "^(.*) ARRAY$") # an array member must not pass as a pointer
        set(decl "${CMAKE_MATCH_1} member[8]")
      endif()
      file(WRITE "${src}" "#include <switchyard/plugin.h>
typedef struct { char pad; ${decl}; } cfg_t;
const sy_config_field_t fields[] = {
    {SY_CFG_FIELD(\"key\", ${cfgtype}, cfg_t, member), .description = \"d\"},
};
_Static_assert(sizeof(fields) == sizeof(sy_config_field_t), \"one field\");
")
      execute_process(COMMAND ${cc} -std=c11 -Wall -Wextra -Werror -pedantic -fsyntax-only
                              -I${SOURCE_DIR}/include ${src}
                      RESULT_VARIABLE rc ERROR_VARIABLE err OUTPUT_QUIET)
      if(expect STREQUAL "ok" AND NOT rc EQUAL 0)
        message(FATAL_ERROR "${cc}: ${cfgtype} with a ${ctype} member did not build:\n${err}")
      elseif(expect STREQUAL "bad")
        if(rc EQUAL 0)
          message(FATAL_ERROR "${cc}: ${cfgtype} with a ${ctype} member built; it must fail")
        endif()
        string(FIND "${err}" "sy_config_member_type_does_not_match_its_SY_CFG_type" at)
        if(at EQUAL -1)
          message(FATAL_ERROR "${cc}: ${cfgtype} with ${ctype} failed without naming the check:\n${err}")
        endif()
      endif()
    endforeach()
  endforeach()
endforeach()
# The offset it gives is offsetof()'s.
file(WRITE "${WORK_DIR}/offset.c" "#include <switchyard/plugin.h>
typedef struct { char pad[3]; double member; } cfg_t;
_Static_assert(SY_CFG_FIELD_OFFSET(SY_CFG_DOUBLE, cfg_t, member) == offsetof(cfg_t, member), \"offset\");
")
list(GET COMPILERS 0 cc)
execute_process(COMMAND ${cc} -std=c11 -Wall -Wextra -Werror -fsyntax-only -I${SOURCE_DIR}/include
                        ${WORK_DIR}/offset.c RESULT_VARIABLE rc ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "SY_CFG_FIELD_OFFSET is not offsetof():\n${err}")
endif()
message(STATUS "${n} field declarations checked")
