# Install rules (included by the top-level CMakeLists.txt when MMGRAD_INSTALL is ON).
#
#   cmake --install build --prefix P
#
# gives a prefix another program builds against in one of two ways:
#   CMake:      find_package(mmgrad 0.1 REQUIRED)  +  target_link_libraries(app PRIVATE mmgrad::mmgrad)
#               (with CMAKE_PREFIX_PATH=P when P is not a system prefix)
#   pkg-config: g++ -std=c++20 app.cpp $(pkg-config --cflags --libs mmgrad)
#               (with PKG_CONFIG_PATH=P/lib/pkgconfig)
# tests/consumer/ holds such a program; ctest -L package installs into a temporary prefix and
# builds it both ways.
include(CMakePackageConfigHelpers)

set(MMGRAD_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/mmgrad
    CACHE STRING "Where mmgradConfig.cmake is installed (relative to the prefix)")

# ---- headers: P/include/mmgrad/<folder>/*.h and the umbrella P/include/mmgrad/mmgrad.h ---------
# The folders of the library's sources (the GLOB of MMGRAD_SOURCES). Only the .h files: not the
# .cpp, nor the CUDA sources (.cu, .cuh), which no public header includes. A public header must
# include only other mmgrad headers and the standard library (<omp.h> aside): never Eigen or stb,
# which the installed package does not carry (the package test compiles every installed header).
set(MMGRAD_HEADER_FOLDERS core tensor autograd kernels ops nn optim metrics data plot)
foreach(folder ${MMGRAD_HEADER_FOLDERS})
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/${folder}
          DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/mmgrad
          FILES_MATCHING PATTERN "*.h")
endforeach()
install(FILES ${PROJECT_SOURCE_DIR}/mmgrad.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/mmgrad)

# ---- the libraries and the exported targets (mmgradTargets.cmake) -------------------------------
set(MMGRAD_INSTALL_TARGETS mmgrad)
if(MMGRAD_CUDA)
  list(APPEND MMGRAD_INSTALL_TARGETS mmgrad_cuda)
endif()
install(TARGETS ${MMGRAD_INSTALL_TARGETS} EXPORT mmgradTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
# The targets are mmgrad::mmgrad (and mmgrad::mmgrad_cuda, which mmgrad::mmgrad links for you).
install(EXPORT mmgradTargets NAMESPACE mmgrad:: DESTINATION ${MMGRAD_INSTALL_CMAKEDIR})

# ---- mmgradConfig.cmake + mmgradConfigVersion.cmake --------------------------------------------
# Before 1.0 a minor version may change the API (CHANGELOG.md), so find_package(mmgrad 0.1)
# accepts 0.1.x only: SameMinorVersion.
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/mmgradConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/mmgradConfig.cmake
                              INSTALL_DESTINATION ${MMGRAD_INSTALL_CMAKEDIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/mmgradConfigVersion.cmake
                                 VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/mmgradConfig.cmake ${PROJECT_BINARY_DIR}/mmgradConfigVersion.cmake
        DESTINATION ${MMGRAD_INSTALL_CMAKEDIR})

# ---- mmgrad.pc ----------------------------------------------------------------------------------
# The flags pkg-config hands out for the static archive: what mmgrad's exported target carries,
# spelled out. prefix is found from where the .pc file lies (${pcfiledir}), so the installed tree
# can be moved and `cmake --install --prefix` (chosen after configuring) needs no rebuild.
file(RELATIVE_PATH MMGRAD_PC_TO_PREFIX /p/${CMAKE_INSTALL_LIBDIR}/pkgconfig /p)  # ../..
string(REGEX REPLACE "/$" "" MMGRAD_PC_TO_PREFIX "${MMGRAD_PC_TO_PREFIX}")
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}" OR IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  message(FATAL_ERROR "mmgrad: CMAKE_INSTALL_LIBDIR and CMAKE_INSTALL_INCLUDEDIR must be relative "
                      "to the prefix (got '${CMAKE_INSTALL_LIBDIR}', '${CMAKE_INSTALL_INCLUDEDIR}')")
endif()
# -L for a library outside the linker's default directories (a zlib or CUDA in its own prefix).
function(mmgrad_pc_libdir out lib)
  get_filename_component(dir "${lib}" DIRECTORY)
  if(dir AND NOT dir IN_LIST CMAKE_CXX_IMPLICIT_LINK_DIRECTORIES)
    set(${out} "-L${dir} " PARENT_SCOPE)
  else()
    set(${out} "" PARENT_SCOPE)
  endif()
endfunction()
list(GET ZLIB_LIBRARIES 0 _mmgrad_zlib)
mmgrad_pc_libdir(_mmgrad_zlib_dir "${_mmgrad_zlib}")
set(MMGRAD_PC_CFLAGS "${OpenMP_CXX_FLAGS}")
set(MMGRAD_PC_LIBS "-lmmgrad")
if(MMGRAD_CUDA)
  string(APPEND MMGRAD_PC_CFLAGS " -DMMGRAD_WITH_CUDA")
  # cudart_static needs libdl, librt and pthreads (CMake's CUDA::cudart_static links the same).
  get_filename_component(_mmgrad_cudart_dir "${CUDA_cudart_static_LIBRARY}" DIRECTORY)
  string(APPEND MMGRAD_PC_LIBS
         " -lmmgrad_cuda -L${_mmgrad_cudart_dir} -lcudart_static -ldl -lrt -lpthread")
endif()
string(APPEND MMGRAD_PC_LIBS " ${OpenMP_CXX_FLAGS} ${_mmgrad_zlib_dir}-lz")
configure_file(${PROJECT_SOURCE_DIR}/cmake/mmgrad.pc.in ${PROJECT_BINARY_DIR}/mmgrad.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/mmgrad.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
