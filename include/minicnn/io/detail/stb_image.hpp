#pragma once
// stb_image (Debian's libstb-dev) compiled into the including translation unit, with the same
// scheme and the same caveat as io/detail/stb_image_write.hpp: STB_IMAGE_STATIC gives every
// stbi_* function internal linkage, so each translation unit that includes this header holds a
// private copy and no link-time collision is possible; `#pragma once` keeps it to one copy per
// translation unit. Only the decoders minicnn documents are compiled (PNG, JPEG, PNM = PGM/PPM,
// BMP), which keeps the copy small; files are read by minicnn and decoded from memory.
//
// A program that uses stb_image itself: include <stb/stb_image.h> BEFORE any minicnn io header
// and keep your own STB_IMAGE_IMPLEMENTATION; this header then uses yours.
#if !defined(STBI_INCLUDE_STB_IMAGE_H)
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STBI_NO_STDIO
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_ONLY_PNM
#define STBI_ONLY_BMP
#include <stb/stb_image.h>
#undef STB_IMAGE_IMPLEMENTATION
#undef STB_IMAGE_STATIC
#endif
