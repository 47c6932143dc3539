/* The sentencepiece seam: a narrow C interface to sentencepiece, built into the shared
 * library libethos_spm.so that links ONLY sentencepiece. tokenizer.cpp dlopen()s it with
 * RTLD_LOCAL | RTLD_DEEPBIND, so sentencepiece's bundled protobuf-lite 3.14 never meets
 * libtorch's protobuf 3.21 (README.md, stack note 3). Plain C types only.
 *
 * Conventions: strings in are (pointer, length) and need not be NUL-terminated; strings
 * and ids out go into a caller buffer and the function returns the size it NEEDS (bytes
 * or ids), so a caller whose buffer was too small resizes and calls again. A negative
 * return (or a null handle) is an error; ethos_spm_last_error() then says why (per thread). */
#ifndef ETHOS_SPM_CAPI_H
#define ETHOS_SPM_CAPI_H
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ethos_spm ethos_spm; /* an opaque loaded model */

/* The message of this thread's last failed call ("" if none). Valid until the next call. */
const char* ethos_spm_last_error(void);

/* Loads a .model file; null on failure. */
ethos_spm* ethos_spm_load(const char* path);
void ethos_spm_free(ethos_spm* model);

/* text -> ids; writes at most `capacity` ids and returns how many the text needs. */
long ethos_spm_encode(const ethos_spm* model, const char* text, size_t len, int* ids, size_t capacity);
/* ids -> text; writes at most `capacity` bytes (no NUL) and returns how many it needs. */
long ethos_spm_decode(const ethos_spm* model, const int* ids, size_t n, char* out, size_t capacity);

/* The piece's id; sentencepiece maps pieces it does not know to the unknown id. */
int ethos_spm_piece_to_id(const ethos_spm* model, const char* piece, size_t len);
/* The id's piece into `out` (no NUL); returns its length, -1 for an id out of range. */
long ethos_spm_id_to_piece(const ethos_spm* model, int id, char* out, size_t capacity);

int ethos_spm_vocab_size(const ethos_spm* model);
int ethos_spm_bos_id(const ethos_spm* model); /* -1 when the model has none */
int ethos_spm_eos_id(const ethos_spm* model);
int ethos_spm_unk_id(const ethos_spm* model);
int ethos_spm_is_unknown(const ethos_spm* model, int id); /* 1 or 0 */

/* Trains a model from n trainer flags given as key/value pairs without "--" (e.g.
 * "input" / "a.txt,b.txt", "model_prefix" / "out/tok", "vocab_size" / "8000"). Pairs rather
 * than one command-line string so that paths may contain spaces. Returns 0, or -1. */
int ethos_spm_train(const char* const* keys, const char* const* values, size_t n);

#ifdef __cplusplus
}
#endif
#endif /* ETHOS_SPM_CAPI_H */
