# The optional CUDA backend, included by the top-level CMakeLists.txt when MINICNN_WITH_CUDA is
# ON (with it OFF nothing here runs: no CUDA language, no CUDA header, no library).
#
# minicnn stays a header-only INTERFACE library, but __global__ kernels need nvcc, and the
# consumers of minicnn are compiled by the host compiler. So the kernels live in one small
# compiled library, minicnn_cuda (src/cuda/*.cu, instantiated for float and double), behind a
# plain C++ interface (include/minicnn/device.hpp, include/minicnn/ops/cuda/ops.hpp). The
# minicnn target links it and carries MINICNN_WITH_CUDA to every consumer as an INTERFACE
# compile definition; nothing goes through global flags.
#
# GPU architectures: CMAKE_CUDA_ARCHITECTURES, default "80;90" (A100, H100/H200): real code for
# both, no PTX. Set it to "native" to build only for the GPUs of the build machine.

find_package(CUDAToolkit 11.8 REQUIRED)  # 11.8: the first with sm_90

if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
  set(CMAKE_CUDA_ARCHITECTURES 80 90)
endif()
if(NOT CMAKE_CUDA_COMPILER AND CUDAToolkit_NVCC_EXECUTABLE)
  set(CMAKE_CUDA_COMPILER ${CUDAToolkit_NVCC_EXECUTABLE})
endif()
if(NOT DEFINED CMAKE_CUDA_HOST_COMPILER)
  set(CMAKE_CUDA_HOST_COMPILER ${CMAKE_CXX_COMPILER})
endif()
if(MINICNN_IS_TOP_LEVEL)
  find_program(MINICNN_CUDA_CCACHE ccache)
  if(MINICNN_CUDA_CCACHE)
    set(CMAKE_CUDA_COMPILER_LAUNCHER ${MINICNN_CUDA_CCACHE})
  endif()
endif()
enable_language(CUDA)

add_library(minicnn_cuda STATIC
  ${CMAKE_CURRENT_LIST_DIR}/../src/cuda/batchnorm.cu
  ${CMAKE_CURRENT_LIST_DIR}/../src/cuda/conv.cu
  ${CMAKE_CURRENT_LIST_DIR}/../src/cuda/kernels.cu
  ${CMAKE_CURRENT_LIST_DIR}/../src/cuda/runtime.cu)
add_library(minicnn::minicnn_cuda ALIAS minicnn_cuda)
target_compile_features(minicnn_cuda PUBLIC cxx_std_17 PRIVATE cuda_std_17)
target_include_directories(minicnn_cuda PUBLIC
  $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include>
  $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
# Position-independent so that it can end up in a user's shared library.
set_target_properties(minicnn_cuda PROPERTIES POSITION_INDEPENDENT_CODE ON CUDA_SEPARABLE_COMPILATION OFF)
target_compile_options(minicnn_cuda PRIVATE
  $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Wall,-Wextra --Werror=cross-execution-space-call>)
target_link_libraries(minicnn_cuda PUBLIC CUDA::cudart PRIVATE CUDA::cublas)

target_link_libraries(minicnn INTERFACE minicnn_cuda)
target_compile_definitions(minicnn INTERFACE MINICNN_WITH_CUDA)

if(MINICNN_INSTALL)
  install(TARGETS minicnn_cuda EXPORT minicnnTargets ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
endif()
