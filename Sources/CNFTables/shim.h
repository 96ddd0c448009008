#include <dlfcn.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <nftables/libnftables.h>

// libnftables is loaded on first use, not linked: it and the five libraries it needs (libmnl,
// libnftnl, libxtables, libjansson, libgmp) would otherwise be mapped and relocated at every
// start of `edgy`, which uses them only for egress. Each pointer has the type the header
// declares, so the compiler checks every call.
struct edgy_nftables {
    __typeof__(nft_ctx_new) *ctx_new;
    __typeof__(nft_ctx_free) *ctx_free;
    __typeof__(nft_ctx_output_set_flags) *ctx_output_set_flags;
    __typeof__(nft_ctx_buffer_output) *ctx_buffer_output;
    __typeof__(nft_ctx_get_output_buffer) *ctx_get_output_buffer;
    __typeof__(nft_ctx_buffer_error) *ctx_buffer_error;
    __typeof__(nft_ctx_get_error_buffer) *ctx_get_error_buffer;
    __typeof__(nft_run_cmd_from_buffer) *run_cmd_from_buffer;
};

// Fills `lib` from libnftables.so.1. NULL on success, else what dlopen or dlsym said.
static inline const char *edgy_nftables_load(struct edgy_nftables *lib) {
    void *handle = dlopen("libnftables.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!handle) return dlerror();
#define EDGY_NFT_SYMBOL(field, name) \
    if (!(lib->field = (__typeof__(lib->field))dlsym(handle, #name))) return dlerror();
    EDGY_NFT_SYMBOL(ctx_new, nft_ctx_new)
    EDGY_NFT_SYMBOL(ctx_free, nft_ctx_free)
    EDGY_NFT_SYMBOL(ctx_output_set_flags, nft_ctx_output_set_flags)
    EDGY_NFT_SYMBOL(ctx_buffer_output, nft_ctx_buffer_output)
    EDGY_NFT_SYMBOL(ctx_get_output_buffer, nft_ctx_get_output_buffer)
    EDGY_NFT_SYMBOL(ctx_buffer_error, nft_ctx_buffer_error)
    EDGY_NFT_SYMBOL(ctx_get_error_buffer, nft_ctx_get_error_buffer)
    EDGY_NFT_SYMBOL(run_cmd_from_buffer, nft_run_cmd_from_buffer)
#undef EDGY_NFT_SYMBOL
    return NULL;
}
