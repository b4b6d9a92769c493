# Test discovery for a test program that holds several suites (tests/CMakeLists.txt).
#
# Run after the program is built (cmake -P, POST_BUILD). It asks the program for its test cases
# with the file each is defined in (`--list-test-cases --reporters=xml`) and writes a ctest file
# with one test per TEST_CASE, named "<suite>: <test case>" where <suite> is the file's name
# (test_ops_conv.cpp -> "test_ops_conv: ..."), and run as
#   <program> --source-file=*/<suite>.cpp --test-case=<test case>
# so that two suites may use the same test-case name. A filter that selects nothing fails
# (tests/main.cpp), so a test cannot pass by running no code.
#
# Inputs (-D): EXE (the program), CTEST_FILE (written), WORKING_DIR, ENVIRONMENT (a list, with
# "|" in place of ";").
cmake_minimum_required(VERSION 3.20)  # this script's policies (cmake -P sets none)
if(NOT EXISTS "${EXE}")
  message(FATAL_ERROR "discover_tests: the test program ${EXE} does not exist")
endif()
execute_process(COMMAND "${EXE}" --list-test-cases --reporters=xml
                OUTPUT_VARIABLE out RESULT_VARIABLE rc WORKING_DIRECTORY "${WORKING_DIR}")
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "discover_tests: ${EXE} --list-test-cases failed (${rc}):\n${out}")
endif()
string(REPLACE "|" ";" env "${ENVIRONMENT}")

# XML's five escapes, back to the characters.
function(xml_unescape var text)
  string(REPLACE "&lt;" "<" text "${text}")
  string(REPLACE "&gt;" ">" text "${text}")
  string(REPLACE "&quot;" "\"" text "${text}")
  string(REPLACE "&apos;" "'" text "${text}")
  string(REPLACE "&amp;" "&" text "${text}")
  set(${var} "${text}" PARENT_SCOPE)
endfunction()

# The names may hold characters CMake's list syntax treats specially ('[', ']'), so the output is
# walked as one string, element by element, never split into a list.
set(script "")
set(count 0)
while(TRUE)
  string(FIND "${out}" "<TestCase " at)
  if(at EQUAL -1)
    break()
  endif()
  string(SUBSTRING "${out}" ${at} -1 out)
  string(FIND "${out}" "/>" end)
  string(SUBSTRING "${out}" 0 ${end} element)
  math(EXPR end "${end} + 2")
  string(SUBSTRING "${out}" ${end} -1 out)
  if(NOT element MATCHES "name=\"([^\"]*)\" filename=\"([^\"]*)\"")
    message(FATAL_ERROR "discover_tests: cannot read <${element}> from ${EXE}")
  endif()
  xml_unescape(name "${CMAKE_MATCH_1}")
  get_filename_component(suite "${CMAKE_MATCH_2}" NAME_WE)
  # doctest's filters separate names at ',' (escaped as "\,").
  string(REPLACE "," "\\," filter "${name}")
  # Bracket arguments keep every character of a name as it is.
  string(APPEND script
         "add_test([==[${suite}: ${name}]==] \"${EXE}\" [==[--source-file=*/${suite}.cpp]==]"
         " [==[--test-case=${filter}]==])\n"
         "set_tests_properties([==[${suite}: ${name}]==] PROPERTIES WORKING_DIRECTORY \"${WORKING_DIR}\""
         " ENVIRONMENT [==[${env}]==] SKIP_REGULAR_EXPRESSION [==[\\[skipped: ]==])\n")
  math(EXPR count "${count} + 1")
endwhile()
if(count EQUAL 0)
  message(FATAL_ERROR "discover_tests: ${EXE} lists no test cases")
endif()
file(WRITE "${CTEST_FILE}.tmp" "${script}")
file(RENAME "${CTEST_FILE}.tmp" "${CTEST_FILE}")
