# The layering check: fails when a library folder includes a header of a folder it may not use.
#
#   cmake -DROOT=<source dir> -P tools/check_layering.cmake
#   cmake -DSELF_TEST_DIR=<scratch dir> -P tools/check_layering.cmake   (checks the check itself)
#
# The rule (docs/architecture.md): engine <- model <- train, infer <- serve; train <- dist (MPI,
# optional); the tokenizer stands alone; cli/ sits on top; every one of them may use common/, which
# uses nothing. Lessons, tests,
# examples, benchmarks and tools may use anything and are not checked. Only lines of the form
# `#include "folder/file.h"` count: that is how the project names its own headers.

# ANCHOR: layering_rule
set(FOLDERS common engine tokenizer model train infer dist serve cli)
set(MAY_USE_common "")
set(MAY_USE_engine common)
set(MAY_USE_tokenizer common)
set(MAY_USE_model common engine)
set(MAY_USE_train common engine model tokenizer)
set(MAY_USE_infer common engine model tokenizer)
set(MAY_USE_dist common engine model tokenizer train)
set(MAY_USE_serve common engine model tokenizer infer)
set(MAY_USE_cli common engine model tokenizer train infer dist serve)
# ANCHOR_END: layering_rule

# Sets ${out} to the list of violations under `root`, one "file: includes "x/y.h", but folder/
# may use only ..." line each.
function(find_violations root out)
  set(found "")
  foreach(folder ${FOLDERS})
    file(GLOB_RECURSE sources RELATIVE ${root} ${root}/${folder}/*.h ${root}/${folder}/*.cpp)
    list(SORT sources)
    foreach(source ${sources})
      file(STRINGS ${root}/${source} includes REGEX "^[ \t]*#[ \t]*include[ \t]*\"[^\"/]+/")
      foreach(line ${includes})
        string(REGEX REPLACE "^[ \t]*#[ \t]*include[ \t]*\"([^\"/]+)/.*$" "\\1" used "${line}")
        string(REGEX REPLACE "^[ \t]*#[ \t]*include[ \t]*\"([^\"]+)\".*$" "\\1" header "${line}")
        list(FIND FOLDERS ${used} known)
        list(FIND MAY_USE_${folder} ${used} allowed)
        if(known GREATER -1 AND NOT used STREQUAL folder AND allowed EQUAL -1)
          string(REPLACE ";" ", " may "${MAY_USE_${folder}}")
          if(may STREQUAL "")
            set(may "nothing of ours")
          endif()
          list(APPEND found "${source}: includes \"${header}\", but ${folder}/ may use only: ${may}")
        endif()
      endforeach()
    endforeach()
  endforeach()
  set(${out} "${found}" PARENT_SCOPE)
endfunction()

if(DEFINED SELF_TEST_DIR)
  # A fake tree that keeps the rule must pass; the same tree with model/ including tokenizer/
  # must fail and name the file and the rule.
  file(REMOVE_RECURSE ${SELF_TEST_DIR})
  file(WRITE ${SELF_TEST_DIR}/common/file_io.h "#pragma once\n")
  file(WRITE ${SELF_TEST_DIR}/engine/tensor.h "#include \"common/file_io.h\"\n")
  file(WRITE ${SELF_TEST_DIR}/tokenizer/tokenizer.h "#include \"common/file_io.h\"\n")
  file(WRITE ${SELF_TEST_DIR}/model/model_io.h "#include <string>\n#include \"engine/tensor.h\"\n#include \"model/model.h\"\n")
  file(WRITE ${SELF_TEST_DIR}/train/trainer.cpp "#include \"model/model_io.h\"\n#include \"tokenizer/tokenizer.h\"\n")
  file(WRITE ${SELF_TEST_DIR}/cli/main.cpp "#include \"train/trainer.h\"\n#include \"infer/generate.h\"\n")
  find_violations(${SELF_TEST_DIR} clean)
  if(clean)
    message(FATAL_ERROR "layering self-test: a tree that keeps the rule was rejected:\n${clean}")
  endif()
  file(APPEND ${SELF_TEST_DIR}/model/model_io.h "#include \"tokenizer/tokenizer.h\"\n")
  file(WRITE ${SELF_TEST_DIR}/engine/ops.cpp "  #  include \"model/model.h\"  // indented\n")
  file(WRITE ${SELF_TEST_DIR}/tokenizer/bpe.cpp "#include \"engine/tensor.h\"\n")
  find_violations(${SELF_TEST_DIR} bad)
  set(expected
      "engine/ops.cpp: includes \"model/model.h\", but engine/ may use only: common"
      "tokenizer/bpe.cpp: includes \"engine/tensor.h\", but tokenizer/ may use only: common"
      "model/model_io.h: includes \"tokenizer/tokenizer.h\", but model/ may use only: common, engine")
  if(NOT bad STREQUAL expected)
    string(REPLACE ";" "\n  " got "${bad}")
    string(REPLACE ";" "\n  " want "${expected}")
    message(FATAL_ERROR "layering self-test: expected the violations\n  ${want}\ngot\n  ${got}")
  endif()
  message(STATUS "layering self-test: a clean tree passes; model/ including tokenizer/ (and two more) is caught")
  return()
endif()

if(NOT DEFINED ROOT)
  message(FATAL_ERROR "usage: cmake -DROOT=<source dir> -P check_layering.cmake")
endif()
find_violations(${ROOT} violations)
if(violations)
  list(LENGTH violations count)
  string(REPLACE ";" "\n  " listing "${violations}")
  message(FATAL_ERROR "layering: ${count} include(s) break the rule (docs/architecture.md):\n  ${listing}")
endif()
string(REPLACE ";" ", " folders "${FOLDERS}")
message(STATUS "layering: every include of ${folders} keeps the rule")
