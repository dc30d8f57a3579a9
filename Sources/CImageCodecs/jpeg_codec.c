/* JPEG decode to RGB8 with the libjpeg(-turbo) API. error_exit longjmps back here. */
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>

#include "image_codecs.h"

typedef struct {
    struct jpeg_error_mgr mgr; /* first member: libjpeg passes &mgr as cinfo->err */
    jmp_buf jump;
    char *err;
    size_t errlen;
    int status;
    int all_rows_read; /* set before jpeg_finish_decompress: a missing EOI marker after the last row is tolerated */
} jpeg_err;

static void on_error_exit(j_common_ptr cinfo) {
    jpeg_err *e = (jpeg_err *)cinfo->err;
    char msg[JMSG_LENGTH_MAX];
    (*cinfo->err->format_message)(cinfo, msg);
    if (e->err && e->errlen) snprintf(e->err, e->errlen, "%s", msg);
    longjmp(e->jump, 1);
}

/* Warnings (msg_level -1) are counted; running out of data before the last row is a truncated file and is fatal, as
 * PIL treats it ("image file is truncated"). Trace messages (level >= 0) are ignored. */
static void on_emit_message(j_common_ptr cinfo, int level) {
    jpeg_err *e = (jpeg_err *)cinfo->err;
    if (level >= 0) return;
    cinfo->err->num_warnings++;
    if (cinfo->err->msg_code == JWRN_JPEG_EOF && !e->all_rows_read) {
        if (e->err && e->errlen) snprintf(e->err, e->errlen, "unexpected end of data (truncated file)");
        e->status = PSEDGE_CODEC_CORRUPT;
        longjmp(e->jump, 1);
    }
}

int psedge_jpeg_decode(const uint8_t *data, size_t size, psedge_rgb8 *out, char *err, size_t errlen) {
    memset(out, 0, sizeof(*out));
    if (size < 3 || data[0] != 0xFF || data[1] != 0xD8 || data[2] != 0xFF) {
        if (err && errlen) snprintf(err, errlen, "not a JPEG file (no start-of-image marker)");
        return PSEDGE_CODEC_CORRUPT;
    }
    struct jpeg_decompress_struct cinfo;
    jpeg_err e;
    uint8_t *volatile pixels = NULL;
    memset(&cinfo, 0, sizeof(cinfo));
    cinfo.err = jpeg_std_error(&e.mgr);
    e.mgr.error_exit = on_error_exit;
    e.mgr.emit_message = on_emit_message;
    e.err = err;
    e.errlen = errlen;
    e.status = PSEDGE_CODEC_CORRUPT;
    e.all_rows_read = 0;
    if (setjmp(e.jump)) {
        free(pixels);
        jpeg_destroy_decompress(&cinfo);
        return e.status;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, (const unsigned char *)data, (unsigned long)size);
    jpeg_read_header(&cinfo, TRUE);
    if (cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK) {
        e.status = PSEDGE_CODEC_UNSUPPORTED;
        if (err && errlen) snprintf(err, errlen, "CMYK/YCCK JPEG is not supported");
        longjmp(e.jump, 1);
    }
    if ((uint64_t)cinfo.image_width * cinfo.image_height > PSEDGE_CODEC_MAX_PIXELS) {
        e.status = PSEDGE_CODEC_UNSUPPORTED;
        if (err && errlen) snprintf(err, errlen, "image too large (%ux%u)", cinfo.image_width, cinfo.image_height);
        longjmp(e.jump, 1);
    }
    /* Library defaults otherwise (islow IDCT, fancy upsampling), as PIL decodes. */
    cinfo.out_color_space = JCS_RGB;
    jpeg_start_decompress(&cinfo);
    if (cinfo.output_components != 3) {
        e.status = PSEDGE_CODEC_UNSUPPORTED;
        if (err && errlen) snprintf(err, errlen, "unsupported JPEG output (%d components)", cinfo.output_components);
        longjmp(e.jump, 1);
    }
    size_t stride = (size_t)cinfo.output_width * 3;
    pixels = (uint8_t *)malloc(stride * cinfo.output_height + 1);
    if (!pixels) {
        e.status = PSEDGE_CODEC_NOMEM;
        if (err && errlen) snprintf(err, errlen, "out of memory");
        longjmp(e.jump, 1);
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = pixels + (size_t)cinfo.output_scanline * stride;
        jpeg_read_scanlines(&cinfo, &row, 1);
    }
    e.all_rows_read = 1;
    jpeg_finish_decompress(&cinfo);
    out->width = cinfo.output_width;
    out->height = cinfo.output_height;
    out->pixels = pixels;
    out->warnings = (int)cinfo.err->num_warnings;
    jpeg_destroy_decompress(&cinfo);
    return PSEDGE_CODEC_OK;
}
