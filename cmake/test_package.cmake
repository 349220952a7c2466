# The test `package_install` (cmake -P): install the built tree into a scratch prefix, build
# examples/standalone against it exactly as an outside project would (find_package), run it, then
# compile and run a small program with nothing but the pkg-config file's flags.
#   -DBUILD_DIR=<build tree> -DSOURCE_DIR=<source tree> -DSCRATCH=<scratch dir> -DCXX=<compiler>
cmake_minimum_required(VERSION 3.18)

function(run what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT status EQUAL 0)
    message(FATAL_ERROR "package test: ${what} failed (${status}):\n${ARGN}\n${out}\n${err}")
  endif()
  message(STATUS "package test: ${what}: ok")
  set(LAST_OUTPUT "${out}" PARENT_SCOPE)
endfunction()

file(REMOVE_RECURSE ${SCRATCH})
set(PREFIX ${SCRATCH}/prefix)
run("install" ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${PREFIX})
foreach(file bin/foundry include/llmfoundry/engine/tensor.h include/llmfoundry/infer/generate.h
             lib/cmake/LLMFoundry/LLMFoundryConfig.cmake lib/pkgconfig/llmfoundry.pc)
  if(NOT EXISTS ${PREFIX}/${file})
    message(FATAL_ERROR "package test: ${PREFIX}/${file} was not installed")
  endif()
endforeach()
run("installed foundry --version" ${PREFIX}/bin/foundry --version)

# The example, configured with nothing from the source tree but its own folder. ccache when the
# machine has it: the example compiles the same way on every run.
find_program(CCACHE ccache)
set(launcher "")
if(CCACHE)
  set(launcher -DCMAKE_CXX_COMPILER_LAUNCHER=${CCACHE})
endif()
run("configure examples/standalone" ${CMAKE_COMMAND} -S ${SOURCE_DIR}/examples/standalone -B ${SCRATCH}/standalone
    -DCMAKE_PREFIX_PATH=${PREFIX} -DCMAKE_CXX_COMPILER=${CXX} ${launcher})
run("build examples/standalone" ${CMAKE_COMMAND} --build ${SCRATCH}/standalone -j2)
run("run standalone" ${SCRATCH}/standalone/standalone 60)
message(STATUS "${LAST_OUTPUT}")

# pkg-config alone: a program that uses the model and the tokenizer.
find_program(PKG_CONFIG pkg-config)
if(NOT PKG_CONFIG)
  message(STATUS "package test: pkg-config not found; the .pc file was installed but not tried")
  return()
endif()
set(ENV{PKG_CONFIG_PATH} ${PREFIX}/lib/pkgconfig)
execute_process(COMMAND ${PKG_CONFIG} --cflags --libs llmfoundry RESULT_VARIABLE status OUTPUT_VARIABLE flags
                ERROR_VARIABLE err OUTPUT_STRIP_TRAILING_WHITESPACE)
if(NOT status EQUAL 0)
  message(FATAL_ERROR "package test: pkg-config --cflags --libs llmfoundry failed: ${err}")
endif()
separate_arguments(flags UNIX_COMMAND "${flags}")
file(WRITE ${SCRATCH}/pc_check.cpp [=[
#include <cstdio>
#include "model/model.h"
#include "tokenizer/tokenizer.h"
int main() {
  foundry::ModelConfig config;
  config.vocab_size = 260;
  foundry::Model model = foundry::make_model(config);
  std::printf("%zu parameters\n", model.num_parameters());
  return model.num_parameters() > 0 ? 0 : 1;
}
]=])
set(cxx ${CXX})
if(CCACHE)
  set(cxx ${CCACHE} ${CXX})
endif()
run("compile with pkg-config flags" ${cxx} ${SCRATCH}/pc_check.cpp -o ${SCRATCH}/pc_check ${flags})
run("run the pkg-config program" ${SCRATCH}/pc_check)
