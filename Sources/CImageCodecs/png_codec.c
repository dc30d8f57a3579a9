/* PNG decode (any color type / bit depth -> RGB8) and RGB8 encode with libpng's classic API. */
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image_codecs.h"

typedef struct {
    char *err;
    size_t errlen;
    const uint8_t *data;
    size_t size;
    size_t pos;
} png_ctx;

static void set_err(char *err, size_t errlen, const char *msg) {
    if (err && errlen) {
        snprintf(err, errlen, "%s", msg);
    }
}

static void on_error(png_structp png, png_const_charp msg) {
    png_ctx *ctx = (png_ctx *)png_get_error_ptr(png);
    set_err(ctx->err, ctx->errlen, msg);
    png_longjmp(png, 1);
}

static void on_warning(png_structp png, png_const_charp msg) {
    (void)png;
    (void)msg; /* warnings (e.g. bad ancillary chunks) do not stop decoding */
}

static void read_mem(png_structp png, png_bytep out, png_size_t n) {
    png_ctx *ctx = (png_ctx *)png_get_io_ptr(png);
    if (n > ctx->size - ctx->pos) {
        png_error(png, "unexpected end of data (truncated file)");
    }
    memcpy(out, ctx->data + ctx->pos, n);
    ctx->pos += n;
}

int psedge_png_decode(const uint8_t *data, size_t size, psedge_rgb8 *out, char *err, size_t errlen) {
    memset(out, 0, sizeof(*out));
    if (size < 8 || png_sig_cmp((png_const_bytep)data, 0, 8) != 0) {
        set_err(err, errlen, "not a PNG file (bad signature)");
        return PSEDGE_CODEC_CORRUPT;
    }
    png_ctx ctx = {err, errlen, data, size, 0};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &ctx, on_error, on_warning);
    if (!png) {
        set_err(err, errlen, "out of memory");
        return PSEDGE_CODEC_NOMEM;
    }
    png_infop info = png_create_info_struct(png);
    /* Volatile: modified between setjmp and a possible longjmp. */
    uint8_t *volatile pixels = NULL;
    png_bytep *volatile rows = NULL;
    volatile int status = PSEDGE_CODEC_CORRUPT;
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        set_err(err, errlen, "out of memory");
        return PSEDGE_CODEC_NOMEM;
    }
    if (setjmp(png_jmpbuf(png))) {
        free(pixels);
        free(rows);
        png_destroy_read_struct(&png, &info, NULL);
        return status;
    }
    png_set_read_fn(png, &ctx, read_mem);
    /* No ancillary chunk (eXIf, iCCP, text…) can be longer than the file: libpng would otherwise allocate what a
     * chunk header claims before finding the data missing. */
    png_set_chunk_malloc_max(png, size);
    /* Only the pixels matter (gamma, colour profiles, text, tRNS — alpha is dropped anyway — change nothing in
     * the RGB8 result), so every ancillary chunk is skipped unread: libpng's handlers for some (sCAL, eXIf)
     * allocate the chunk's claimed length first, and "chunk data is too large" is only a warning for readers. */
    png_set_keep_unknown_chunks(png, PNG_HANDLE_CHUNK_NEVER, NULL, -1);
    png_read_info(png, info);

    png_uint_32 w = 0, h = 0;
    int depth = 0, color = 0, interlace = 0;
    png_get_IHDR(png, info, &w, &h, &depth, &color, &interlace, NULL, NULL);
    if ((uint64_t)w * (uint64_t)h > PSEDGE_CODEC_MAX_PIXELS) {
        status = PSEDGE_CODEC_UNSUPPORTED;
        png_error(png, "image too large");
    }
    /* Deflate expands at most ~1032:1, so the filtered rows (one filter byte each) cannot exceed ~1032x the
     * file. A small file claiming a huge image is refused before the pixel buffer is allocated. */
    {
        int channels = png_get_channels(png, info);
        uint64_t row_bytes = ((uint64_t)w * (uint64_t)channels * (uint64_t)depth + 7) / 8 + 1;
        if ((uint64_t)h * row_bytes > (uint64_t)size * 1100 + 4096) {
            status = PSEDGE_CODEC_CORRUPT;
            png_error(png, "truncated or corrupt: the header's image size cannot fit in this file");
        }
    }
    /* Everything to 8-bit RGB: palette and low-depth gray expanded, 16-bit scaled (rounded), gray replicated,
     * alpha dropped (not composited), as PIL's convert("RGB") does. */
    if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (color == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (depth == 16) png_set_scale_16(png);
    if (color == PNG_COLOR_TYPE_GRAY || color == PNG_COLOR_TYPE_GRAY_ALPHA) png_set_gray_to_rgb(png);
    /* png_set_palette_to_rgb also turns a tRNS chunk into an alpha channel: drop that too. */
    if ((color & PNG_COLOR_MASK_ALPHA) || png_get_valid(png, info, PNG_INFO_tRNS)) png_set_strip_alpha(png);
    if (interlace != PNG_INTERLACE_NONE) png_set_interlace_handling(png);
    png_read_update_info(png, info);
    if (png_get_rowbytes(png, info) != (size_t)w * 3) {
        status = PSEDGE_CODEC_UNSUPPORTED;
        png_error(png, "unsupported PNG pixel layout");
    }
    status = PSEDGE_CODEC_NOMEM;
    pixels = (uint8_t *)malloc((size_t)w * h * 3 + 1);
    rows = (png_bytep *)malloc(sizeof(png_bytep) * (h + 1));
    if (!pixels || !rows) png_error(png, "out of memory");
    status = PSEDGE_CODEC_CORRUPT;
    for (png_uint_32 y = 0; y < h; y++) rows[y] = pixels + (size_t)y * w * 3;
    png_read_image(png, rows);
    png_read_end(png, NULL);
    png_destroy_read_struct(&png, &info, NULL);
    free(rows);
    out->width = w;
    out->height = h;
    out->pixels = pixels;
    return PSEDGE_CODEC_OK;
}

typedef struct {
    uint8_t *buf;
    size_t size;
    size_t cap;
    int failed;
} png_out;

static void write_mem(png_structp png, png_bytep data, png_size_t n) {
    png_out *o = (png_out *)png_get_io_ptr(png);
    if (o->size + n > o->cap) {
        size_t cap = o->cap ? o->cap : 4096;
        while (cap < o->size + n) cap *= 2;
        uint8_t *b = (uint8_t *)realloc(o->buf, cap);
        if (!b) {
            o->failed = 1;
            png_error(png, "out of memory");
        }
        o->buf = b;
        o->cap = cap;
    }
    memcpy(o->buf + o->size, data, n);
    o->size += n;
}

static void flush_mem(png_structp png) { (void)png; }

int psedge_png_encode_rgb8(const uint8_t *pixels, uint32_t width, uint32_t height, uint8_t **png_data, size_t *png_size,
                           char *err, size_t errlen) {
    *png_data = NULL;
    *png_size = 0;
    if (width == 0 || height == 0 || width > 0x7fffffff || height > 0x7fffffff) {
        set_err(err, errlen, "PNG needs a width and height between 1 and 2^31-1");
        return PSEDGE_CODEC_UNSUPPORTED;
    }
    png_ctx ctx = {err, errlen, NULL, 0, 0};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &ctx, on_error, on_warning);
    if (!png) {
        set_err(err, errlen, "out of memory");
        return PSEDGE_CODEC_NOMEM;
    }
    png_infop info = png_create_info_struct(png);
    png_out o = {NULL, 0, 0, 0};
    png_bytep *volatile rows = NULL;
    if (!info) {
        png_destroy_write_struct(&png, NULL);
        set_err(err, errlen, "out of memory");
        return PSEDGE_CODEC_NOMEM;
    }
    if (setjmp(png_jmpbuf(png))) {
        free(o.buf);
        free(rows);
        png_destroy_write_struct(&png, &info);
        return o.failed ? PSEDGE_CODEC_NOMEM : PSEDGE_CODEC_CORRUPT;
    }
    png_set_write_fn(png, &o, write_mem, flush_mem);
    png_set_IHDR(png, info, width, height, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    rows = (png_bytep *)malloc(sizeof(png_bytep) * height);
    if (!rows) {
        o.failed = 1;
        png_error(png, "out of memory");
    }
    for (uint32_t y = 0; y < height; y++) rows[y] = (png_bytep)(pixels + (size_t)y * width * 3);
    png_write_image(png, rows);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    free(rows);
    *png_data = o.buf;
    *png_size = o.size;
    return PSEDGE_CODEC_OK;
}

void psedge_codec_free(void *p) { free(p); }
