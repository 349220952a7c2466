# Package mode: `cmake --install build --prefix PREFIX` installs the libraries, their headers, the
# `foundry` program, a CMake package and a pkg-config file, so a project outside this tree can
# use the engine:
#
#   find_package(LLMFoundry REQUIRED)            # with CMAKE_PREFIX_PATH=PREFIX
#   target_link_libraries(app PRIVATE foundry::train foundry::infer)
#
#   g++ -std=c++17 app.cpp $(PKG_CONFIG_PATH=PREFIX/lib/pkgconfig pkg-config --cflags --libs llmfoundry)
#
# Layout under PREFIX:
#   bin/foundry
#   include/llmfoundry/<folder>/*.h      so `#include "engine/tensor.h"` reads as in this tree
#   lib/libfoundry_<name>.a              the float libraries (the double twins are test-only)
#   lib/cmake/LLMFoundry/                LLMFoundryConfig.cmake, its version file, the targets
#   lib/pkgconfig/llmfoundry.pc
# examples/standalone/ is a project that builds this way; the test `package_install` runs it.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(FOUNDRY_INSTALL_INCLUDEDIR ${CMAKE_INSTALL_INCLUDEDIR}/llmfoundry)
set(FOUNDRY_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/LLMFoundry)

# The libraries in link order (each after everything that depends on it); a folder library that
# does not exist in this tree is skipped.
set(FOUNDRY_PACKAGE_LIBRARIES "")
foreach(name infer train model tokenizer engine common)
  if(TARGET foundry_${name})
    list(APPEND FOUNDRY_PACKAGE_LIBRARIES ${name})
  endif()
endforeach()

# Compiled with -march=native, the libraries' Eigen code assumes this CPU's vector width
# (alignment of Eigen's allocations included); code that includes the headers must be compiled
# the same way, so the flags travel with the installed targets.
set(FOUNDRY_INTERFACE_FLAGS "")
if(NOT FOUNDRY_PORTABLE)
  set(FOUNDRY_INTERFACE_FLAGS -march=native -mtune=generic)
endif()
# A sanitizer build's libraries call into the sanitizer runtimes (every instrumented access
# does), so a program linked against them must be built and linked with the same
# -fsanitize flags, which therefore travel with the package too.
set(FOUNDRY_INTERFACE_LINK_FLAGS "")
if(FOUNDRY_SANITIZE)
  list(APPEND FOUNDRY_INTERFACE_FLAGS ${FOUNDRY_SANITIZE_FLAGS})
  set(FOUNDRY_INTERFACE_LINK_FLAGS ${FOUNDRY_SANITIZE_FLAGS})
endif()

foreach(name ${FOUNDRY_PACKAGE_LIBRARIES})
  set_target_properties(foundry_${name} PROPERTIES EXPORT_NAME ${name})
  target_include_directories(foundry_${name} PUBLIC $<INSTALL_INTERFACE:${FOUNDRY_INSTALL_INCLUDEDIR}>)
  if(FOUNDRY_INTERFACE_FLAGS)
    target_compile_options(foundry_${name} INTERFACE $<INSTALL_INTERFACE:${FOUNDRY_INTERFACE_FLAGS}>)
  endif()
  if(FOUNDRY_INTERFACE_LINK_FLAGS)
    target_link_options(foundry_${name} INTERFACE $<INSTALL_INTERFACE:${FOUNDRY_INTERFACE_LINK_FLAGS}>)
  endif()
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/${name}/ DESTINATION ${FOUNDRY_INSTALL_INCLUDEDIR}/${name}
          FILES_MATCHING PATTERN "*.h")
  list(APPEND FOUNDRY_PACKAGE_TARGETS foundry_${name})
endforeach()

install(TARGETS ${FOUNDRY_PACKAGE_TARGETS} EXPORT LLMFoundryTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        INCLUDES DESTINATION ${FOUNDRY_INSTALL_INCLUDEDIR})
install(TARGETS foundry RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(EXPORT LLMFoundryTargets NAMESPACE foundry:: DESTINATION ${FOUNDRY_CMAKE_DIR})

configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/LLMFoundryConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/package/LLMFoundryConfig.cmake
                              INSTALL_DESTINATION ${FOUNDRY_CMAKE_DIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/package/LLMFoundryConfigVersion.cmake
                                 VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/package/LLMFoundryConfig.cmake
              ${PROJECT_BINARY_DIR}/package/LLMFoundryConfigVersion.cmake
        DESTINATION ${FOUNDRY_CMAKE_DIR})

# pkg-config: the same libraries, flags and dependencies (Debian ships eigen3.pc and nlohmann_json.pc).
set(FOUNDRY_PC_LIBS "")
foreach(name ${FOUNDRY_PACKAGE_LIBRARIES})
  string(APPEND FOUNDRY_PC_LIBS " -lfoundry_${name}")
endforeach()
if(FOUNDRY_HAVE_ONEDNN)
  string(APPEND FOUNDRY_PC_LIBS " ${FOUNDRY_DNNL_LIBRARY}")  # the engine's bf16 products call it
endif()
string(REPLACE ";" " " FOUNDRY_PC_CFLAGS "${FOUNDRY_INTERFACE_FLAGS}")
string(REPLACE ";" " " FOUNDRY_PC_LINK_FLAGS "${FOUNDRY_INTERFACE_LINK_FLAGS}")
set(FOUNDRY_PC_OPENMP "")
if(FOUNDRY_HAVE_OPENMP)
  set(FOUNDRY_PC_OPENMP "-fopenmp")
endif()
# The prefix is found relative to the .pc file itself, so `cmake --install --prefix P` works for
# any P chosen at install time.
string(REGEX REPLACE "[^/]+" ".." FOUNDRY_PC_UP "${CMAKE_INSTALL_LIBDIR}/pkgconfig")
configure_file(${PROJECT_SOURCE_DIR}/cmake/llmfoundry.pc.in ${PROJECT_BINARY_DIR}/package/llmfoundry.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/package/llmfoundry.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

# The test: install into a scratch prefix, build examples/standalone against it (CMake package),
# run it; then compile it once more with the pkg-config flags alone.
add_test(NAME package_install
         COMMAND ${CMAKE_COMMAND} -DBUILD_DIR=${PROJECT_BINARY_DIR} -DSOURCE_DIR=${PROJECT_SOURCE_DIR}
                 -DSCRATCH=${PROJECT_BINARY_DIR}/test_scratch/package -DCXX=${CMAKE_CXX_COMPILER}
                 -P ${PROJECT_SOURCE_DIR}/cmake/test_package.cmake)
set_tests_properties(package_install PROPERTIES ENVIRONMENT "OMP_NUM_THREADS=1" TIMEOUT 600)
