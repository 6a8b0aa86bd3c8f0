#pragma once
// MINICNN_HOST_DEVICE marks a function that both backends run: nvcc compiles it for the host
// and the GPU (__host__ __device__), every other compiler sees an ordinary inline function.
// Kernel bodies written once this way (ops/kernels/) are what the CPU test suite checks, so
// the CUDA kernels' arithmetic is tested even on machines without a GPU.
//
// This tests which compiler reads the file (__CUDACC__), not which backend the build has:
// the backend switch, MINICNN_WITH_CUDA, is read only in config.hpp and ops/dispatch.hpp.
#if defined(__CUDACC__)
#define MINICNN_HOST_DEVICE __host__ __device__
#else
#define MINICNN_HOST_DEVICE
#endif
