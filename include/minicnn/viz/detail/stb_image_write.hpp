#pragma once
// stb_image_write (Debian's libstb-dev) compiled into the including translation unit.
//
// stb libraries want STB_IMAGE_WRITE_IMPLEMENTATION defined in exactly one .c/.cpp file of a
// program. A header-only library has no such file, so minicnn compiles the implementation with
// STB_IMAGE_WRITE_STATIC instead: every stbi_* function and variable gets internal linkage, each
// translation unit that includes this header carries its own private copy (a few kB of code),
// and no two copies can collide at link time. `#pragma once` keeps it to one copy per
// translation unit. minicnn only calls stbi_write_png_to_func (it writes the bytes itself).
//
// A program that uses stb_image_write itself: include <stb/stb_image_write.h> BEFORE any minicnn
// viz header and define the implementation in one of your files as usual; this header then
// reuses your declarations instead of compiling a second copy. (Including yours after this
// header, with the implementation defined in that same file, is the one order that fails.)
#if !defined(INCLUDE_STB_IMAGE_WRITE_H)
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb/stb_image_write.h>
#undef STB_IMAGE_WRITE_IMPLEMENTATION
#undef STB_IMAGE_WRITE_STATIC
#endif
