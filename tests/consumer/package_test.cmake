# The package tests (ctest -L package; registered in tests/CMakeLists.txt): does mmgrad work as a
# library in someone else's program? Run as a script, one check per MODE:
#
#   cmake -DMODE=<mode> -DBIN=<mmgrad build> -DSRC=<mmgrad source> -DWORK=<scratch folder>
#         -DCXX=<compiler> -DGENERATOR=<generator> [-DCONFIG=Release] [...] -P package_test.cmake
#
#   install         cmake --install BIN --prefix WORK/prefix, and check what landed there
#   headers         every installed header compiles on its own, against the prefix only
#   find_package    configure, build and run tests/consumer/find_package against the prefix;
#                   a version the package does not promise (0.2, 1.0) is refused
#   pkg_config      compile and run the same main.cpp with `pkg-config --cflags --libs mmgrad`
#   add_subdirectory configure tests/consumer/add_subdirectory (its CMakeLists.txt checks what
#                   mmgrad guarantees a parent project) with doctest made unfindable
#
# Every failure is a FATAL_ERROR (the test fails) naming what went wrong. The scratch folders are
# under the build folder and are removed before each run (and after a passing one).
cmake_minimum_required(VERSION 3.20)

foreach(var MODE BIN SRC WORK CXX GENERATOR LIBDIR VERSION)
  if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
    message(FATAL_ERROR "package_test.cmake: -D${var}=... is missing")
  endif()
endforeach()
# Lists travel with '|' for ';' (a ';' would split the ctest command line).
string(REPLACE "|" ";" PREFIX_PATH "${PREFIX_PATH}")
separate_arguments(OPENMP_FLAGS UNIX_COMMAND "${OPENMP_FLAGS}")
set(prefix ${WORK}/prefix)
if(CONFIG)
  set(config_args --config ${CONFIG})
endif()

# run(<what> COMMAND ...): runs a command; on failure stops with its output.
function(run what)
  cmake_parse_arguments(PARSE_ARGV 1 R "" "WORKING_DIRECTORY;OUTPUT" "COMMAND")
  if(NOT R_WORKING_DIRECTORY)
    set(R_WORKING_DIRECTORY ${WORK}/${MODE})
  endif()
  file(MAKE_DIRECTORY ${R_WORKING_DIRECTORY})
  execute_process(COMMAND ${R_COMMAND} WORKING_DIRECTORY ${R_WORKING_DIRECTORY}
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    list(JOIN R_COMMAND " " cmd)
    message(FATAL_ERROR "package test (${MODE}): ${what} failed (exit ${rc}):\n  ${cmd}\n${out}")
  endif()
  message(STATUS "${what}: ok")
  if(R_OUTPUT)
    set(${R_OUTPUT} "${out}" PARENT_SCOPE)
  endif()
endfunction()

function(fail text)
  message(FATAL_ERROR "package test (${MODE}): ${text}")
endfunction()

# The options every consumer configure gets: this build's compiler, generator and dependency
# prefixes (scripts/gpu_bundle.sh's, where the machine lacks the Debian packages).
set(consumer_args -G ${GENERATOR} -DCMAKE_CXX_COMPILER=${CXX})
if(MAKE_PROGRAM)
  list(APPEND consumer_args -DCMAKE_MAKE_PROGRAM=${MAKE_PROGRAM})
endif()
if(LAUNCHER)
  list(APPEND consumer_args -DCMAKE_CXX_COMPILER_LAUNCHER=${LAUNCHER})
endif()

# The consumer's output must end in "consumer: ok" (main.cpp checks loss, accuracy, reload).
function(run_consumer exe dir)
  run("run ${exe}" COMMAND ${exe} ${dir}/consumer.ckpt WORKING_DIRECTORY ${dir} OUTPUT out)
  message(STATUS "${out}")
  if(NOT out MATCHES "consumer: ok")
    fail("${exe} did not print 'consumer: ok':\n${out}")
  endif()
endfunction()

if(MODE STREQUAL "install")
  # Only this mode's folders: the add_subdirectory test may run meanwhile in WORK/add_subdirectory.
  file(REMOVE_RECURSE ${prefix} ${WORK}/install)
  run("cmake --install" COMMAND ${CMAKE_COMMAND} --install ${BIN} --prefix ${prefix} ${config_args})

  # What must be there ...
  set(libdir ${prefix}/${LIBDIR})
  set(expected ${libdir}/libmmgrad.a ${prefix}/include/mmgrad/mmgrad.h
      ${prefix}/include/mmgrad/tensor/tensor.h ${prefix}/include/mmgrad/nn/linear.h
      ${prefix}/include/mmgrad/optim/optim.h ${prefix}/include/mmgrad/kernels/cpu/parallel.h
      ${libdir}/cmake/mmgrad/mmgradConfig.cmake ${libdir}/cmake/mmgrad/mmgradConfigVersion.cmake
      ${libdir}/cmake/mmgrad/mmgradTargets.cmake ${libdir}/pkgconfig/mmgrad.pc)
  if(CUDA)
    list(APPEND expected ${libdir}/libmmgrad_cuda.a)
  endif()
  foreach(f ${expected})
    if(NOT EXISTS ${f})
      fail("${f} was not installed")
    endif()
  endforeach()
  # ... and what must not: sources, CUDA sources, the course, tests, top-level folders outside
  # include/mmgrad/ (they would collide with a user's own core/, nn/, ...).
  file(GLOB_RECURSE stray RELATIVE ${prefix}/include ${prefix}/include/*.cpp ${prefix}/include/*.cu
       ${prefix}/include/*.cuh ${prefix}/include/mmgrad/tests/* ${prefix}/include/mmgrad/lessons/*
       ${prefix}/include/mmgrad/exercises/* ${prefix}/include/mmgrad/bench/*)
  file(GLOB top RELATIVE ${prefix}/include ${prefix}/include/*)
  if(stray OR NOT top STREQUAL "mmgrad")
    fail("unexpected files installed: ${stray}; include/ holds: ${top}")
  endif()
  file(GLOB_RECURSE headers ${prefix}/include/*.h)
  list(LENGTH headers n)
  if(n LESS 50)
    fail("only ${n} headers installed under ${prefix}/include")
  endif()
  # A public header may include only mmgrad's own headers and the system's: no Eigen, no stb, no
  # zlib (the package does not ask the consumer for them).
  foreach(h ${headers})
    file(STRINGS ${h} bad REGEX "^[ \t]*#[ \t]*include[ \t]*[<\"](Eigen|unsupported/Eigen|stb|zlib)")
    if(bad)
      fail("${h} includes a build-only dependency: ${bad}")
    endif()
  endforeach()
  # The exported targets name neither Eigen nor stb nor a path of this build or source tree; the
  # .pc file no Eigen and no path of this build (it may name a zlib in a prefix of its own).
  file(GLOB exports ${libdir}/cmake/mmgrad/*.cmake)
  foreach(f ${exports} ${libdir}/pkgconfig/mmgrad.pc)
    file(READ ${f} text)
    set(words Eigen3 eigen3 "${BIN}/")
    if(f MATCHES "[.]cmake$")
      list(APPEND words stb/ STB "${SRC}/")
    endif()
    foreach(word ${words})
      string(FIND "${text}" "${word}" at)
      if(NOT at EQUAL -1)
        fail("${f} mentions '${word}': the installed package must not need it")
      endif()
    endforeach()
  endforeach()
  message(STATUS "installed ${n} headers, the library, the CMake package and mmgrad.pc in ${prefix}")
  file(REMOVE_RECURSE ${WORK}/install)

elseif(MODE STREQUAL "headers")
  # One translation unit per header would take minutes; one that includes them all catches a
  # header that needs something not installed (another header, Eigen, stb) just as well. The
  # include path is the prefix alone: not the source tree, not Eigen's folder.
  set(dir ${WORK}/headers)
  file(REMOVE_RECURSE ${dir})
  file(MAKE_DIRECTORY ${dir})
  file(GLOB_RECURSE headers RELATIVE ${prefix}/include ${prefix}/include/mmgrad/*.h)
  list(SORT headers)
  set(text "// Generated by tests/consumer/package_test.cmake: every installed header.\n")
  foreach(h ${headers})
    string(APPEND text "#include <${h}>\n")
  endforeach()
  string(APPEND text "int main() { return 0; }\n")
  file(WRITE ${dir}/all_headers.cpp "${text}")
  list(LENGTH headers n)
  run("compile all ${n} installed headers in one unit"
      COMMAND ${CXX} -std=c++20 ${OPENMP_FLAGS} -fsyntax-only -Wall -Wextra -Werror
              -I${prefix}/include ${dir}/all_headers.cpp)
  file(REMOVE_RECURSE ${dir})

elseif(MODE STREQUAL "find_package")
  set(dir ${WORK}/find_package)
  file(REMOVE_RECURSE ${dir})
  set(prefix_path ${prefix} ${PREFIX_PATH})
  string(REPLACE ";" "\\;" prefix_path "${prefix_path}")
  # Eigen made unfindable: the package must not ask for it.
  run("configure the find_package consumer"
      COMMAND ${CMAKE_COMMAND} -S ${SRC}/tests/consumer/find_package -B ${dir} ${consumer_args}
              -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH=${prefix_path}
              -DCMAKE_DISABLE_FIND_PACKAGE_Eigen3=ON)
  # It found this prefix, not another mmgrad.
  file(STRINGS ${dir}/CMakeCache.txt found REGEX "^mmgrad_DIR:")
  if(NOT found MATCHES "=${prefix}/")
    fail("find_package(mmgrad) found '${found}', not the package in ${prefix}")
  endif()
  run("build the find_package consumer" COMMAND ${CMAKE_COMMAND} --build ${dir} ${config_args})
  set(exe ${dir}/consumer)
  if(CONFIG AND EXISTS ${dir}/${CONFIG}/consumer)
    set(exe ${dir}/${CONFIG}/consumer)
  endif()
  run_consumer(${exe} ${dir})

  # The version file: 0.1.x promises find_package(mmgrad 0.1) only (SameMinorVersion before 1.0).
  set(vdir ${WORK}/version)
  file(REMOVE_RECURSE ${vdir})
  file(WRITE ${vdir}/src/CMakeLists.txt [=[
cmake_minimum_required(VERSION 3.20)
project(mmgrad_version_check LANGUAGES NONE)
foreach(v 0.2 1.0 0.0)
  find_package(mmgrad ${v} QUIET NO_DEFAULT_PATH PATHS ${MMGRAD_PREFIX})
  if(mmgrad_FOUND)
    message(FATAL_ERROR "find_package(mmgrad ${v}) accepted mmgrad ${mmgrad_VERSION}")
  endif()
  unset(mmgrad_DIR CACHE)
endforeach()
]=])
  run("find_package(mmgrad 0.2 / 1.0 / 0.0) is refused"
      COMMAND ${CMAKE_COMMAND} -S ${vdir}/src -B ${vdir}/build -G ${GENERATOR}
              -DMMGRAD_PREFIX=${prefix})
  file(REMOVE_RECURSE ${dir} ${vdir})

elseif(MODE STREQUAL "pkg_config")
  if(NOT PKG_CONFIG)
    message("[skipped: no pkg-config on this machine]")  # ctest reports the test as skipped
    return()
  endif()
  set(dir ${WORK}/pkg_config)
  file(REMOVE_RECURSE ${dir})
  file(MAKE_DIRECTORY ${dir})
  set(ENV{PKG_CONFIG_PATH} ${prefix}/${LIBDIR}/pkgconfig)
  run("pkg-config --modversion mmgrad" COMMAND ${PKG_CONFIG} --modversion mmgrad OUTPUT version)
  string(STRIP "${version}" version)
  if(NOT version STREQUAL VERSION)
    fail("pkg-config says mmgrad ${version}, the project is ${VERSION}")
  endif()
  run("pkg-config --cflags --libs mmgrad" COMMAND ${PKG_CONFIG} --cflags --libs mmgrad OUTPUT flags)
  string(STRIP "${flags}" flags)
  message(STATUS "flags: ${flags}")
  separate_arguments(flags UNIX_COMMAND "${flags}")
  # As a user would type it: g++ -std=c++20 main.cpp $(pkg-config --cflags --libs mmgrad)
  run("compile and link with the pkg-config flags"
      COMMAND ${CXX} -std=c++20 -O2 ${SRC}/tests/consumer/find_package/main.cpp ${flags}
              -o ${dir}/consumer)
  run_consumer(${dir}/consumer ${dir})
  file(REMOVE_RECURSE ${dir})

elseif(MODE STREQUAL "add_subdirectory")
  set(dir ${WORK}/add_subdirectory)
  file(REMOVE_RECURSE ${dir})
  set(cuda_args -DMMGRAD_CUDA=${CUDA})
  if(CUDA AND CUDA_COMPILER)
    list(APPEND cuda_args -DCMAKE_CUDA_COMPILER=${CUDA_COMPILER})
  endif()
  if(CUDA AND CUDA_ARCHITECTURES)
    string(REPLACE "|" "\\;" archs "${CUDA_ARCHITECTURES}")
    list(APPEND cuda_args -DCMAKE_CUDA_ARCHITECTURES=${archs})
  endif()
  string(REPLACE ";" "\\;" prefix_path "${PREFIX_PATH}")
  # No build type given: mmgrad must leave it empty (MMGRAD_EXPECT_BUILD_TYPE); doctest made
  # unfindable: mmgrad must not look for it with its tests off.
  run("configure the add_subdirectory consumer (its checks)"
      COMMAND ${CMAKE_COMMAND} -S ${SRC}/tests/consumer/add_subdirectory -B ${dir} ${consumer_args}
              -DMMGRAD_PATH=${SRC} -DCMAKE_PREFIX_PATH=${prefix_path} ${cuda_args}
              -DCMAKE_DISABLE_FIND_PACKAGE_doctest=ON -DMMGRAD_EXPECT_BUILD_TYPE=
      OUTPUT out)
  if(NOT out MATCHES "mmgrad as a subproject: mmgrad::mmgrad defined")
    fail("the consumer's checks did not run:\n${out}")
  endif()
  file(REMOVE_RECURSE ${dir})

else()
  fail("unknown MODE '${MODE}'")
endif()
