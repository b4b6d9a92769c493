# ctest "exercise <id>: your code": checks the learner's tasks/<id>_<name>.cpp with its checker.
#
# exercise_<id> (checker + your file) is not part of the default build: a fresh `make test`
# would otherwise compile and link one program per task before a learner has written a line.
# While the file is still the committed stub (it calls not_done(...)) the test reports itself as
# skipped without building anything; once you have written the function, this builds
# exercise_<id> (a compile error fails the test and shows the compiler's message) and runs it:
# status 0 passed, 77 not done yet (skipped), anything else wrong.
#
# cmake -DID=1.2 -DTASK_FILE=<src> -DBUILD_DIR=<build> -DTARGET=exercise_1_2 -DEXE=<path> -P this
foreach(v ID TASK_FILE BUILD_DIR TARGET EXE)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "your_code_test.cmake: -D${v}=... is missing")
  endif()
endforeach()
file(READ ${TASK_FILE} _src)
if(_src MATCHES "not_done\\(")
  message("[skipped: task ${ID} is not done yet: ${TASK_FILE} still calls not_done(); "
          "write the function, then make exercise TASK=${ID}]")
  return()
endif()
execute_process(COMMAND ${CMAKE_COMMAND} --build ${BUILD_DIR} --target ${TARGET}
                RESULT_VARIABLE _rc OUTPUT_VARIABLE _out ERROR_VARIABLE _out)
if(NOT _rc EQUAL 0)
  message("${_out}")
  message(FATAL_ERROR "exercise ${ID}: your file does not compile (the compiler's message is above)")
endif()
execute_process(COMMAND ${EXE} RESULT_VARIABLE _rc)
if(_rc EQUAL 77)
  message("[skipped: task ${ID} is not done yet]")
elseif(NOT _rc EQUAL 0)
  message(FATAL_ERROR "exercise ${ID}: your ${TARGET} reported a wrong answer (status ${_rc}, above)")
endif()
