#ifndef PSEDGE_IMAGE_CODECS_H
#define PSEDGE_IMAGE_CODECS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Decoders and the PNG encoder behind PSEdgeImage. libpng reports errors with longjmp and libjpeg with
 * error_exit; both are caught inside these functions (setjmp in C), so no non-local jump ever crosses a
 * Swift frame. Each returns 0 on success, or nonzero with a NUL-terminated message in err. */

#define PSEDGE_CODEC_OK 0
#define PSEDGE_CODEC_CORRUPT 1      /* malformed or truncated data */
#define PSEDGE_CODEC_UNSUPPORTED 2  /* valid but not handled (e.g. CMYK JPEG) */
#define PSEDGE_CODEC_NOMEM 3

typedef struct {
    uint32_t width;
    uint32_t height;
    /* width * height * 3 bytes, RGB interleaved, rows top to bottom; free with psedge_codec_free. */
    uint8_t *pixels;
    /* libjpeg warnings that were not fatal (e.g. extraneous bytes before a marker). */
    int warnings;
} psedge_rgb8;

/* Limits guard against decompression bombs: images larger than this are refused. */
#define PSEDGE_CODEC_MAX_PIXELS ((uint64_t)1 << 28)

int psedge_png_decode(const uint8_t *data, size_t size, psedge_rgb8 *out, char *err, size_t errlen);
int psedge_jpeg_decode(const uint8_t *data, size_t size, psedge_rgb8 *out, char *err, size_t errlen);

/* Encodes RGB8 pixels (width * height * 3) as PNG; *png (free with psedge_codec_free) receives *png_size bytes. */
int psedge_png_encode_rgb8(const uint8_t *pixels, uint32_t width, uint32_t height, uint8_t **png, size_t *png_size,
                           char *err, size_t errlen);

void psedge_codec_free(void *p);

#ifdef __cplusplus
}
#endif

#endif
