#!/usr/bin/env python3
"""Writes a random-weight GGUF of an LFM2 backbone, shaped like the `lfm` section of a model
directory's config.json, for timing llama.cpp on the same shapes as `eddy bench` (see
bench/vs_llamacpp.sh). Matrices are F16, norms and the short-conv kernels F32, embeddings tied;
the vocabulary is llama.cpp's "no_vocab" (token ids only). Weight values are a repeated
pseudo-random chunk in [-0.05, 0.05]: speed does not depend on them. Python standard library only.

Usage: bench/lfm2_gguf.py CONFIG_JSON OUT.gguf
"""
import json
import random
import struct
import sys

GGUF_UINT32, GGUF_INT32, GGUF_FLOAT32, GGUF_STRING, GGUF_ARRAY = 4, 5, 6, 8, 9
GGML_F32, GGML_F16 = 0, 1
ALIGNMENT = 32


def gguf_string(s):
    b = s.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


def gguf_kv(key, vtype, value):
    out = gguf_string(key) + struct.pack("<I", vtype)
    if vtype == GGUF_UINT32:
        return out + struct.pack("<I", value)
    if vtype == GGUF_FLOAT32:
        return out + struct.pack("<f", value)
    if vtype == GGUF_STRING:
        return out + gguf_string(value)
    if vtype == GGUF_ARRAY:  # of INT32
        return out + struct.pack("<IQ", GGUF_INT32, len(value)) + struct.pack(
            "<%di" % len(value), *value)
    raise ValueError(vtype)


def feed_forward_width(cfg):
    # The SwiGLU width LFM2 actually uses (spec_backbone.md: block_auto_adjust_ff_dim).
    width = cfg.get("block_ff_dim", cfg["intermediate_size"])
    if cfg.get("block_auto_adjust_ff_dim"):
        width = int(2 * width / 3)
        if cfg.get("block_ffn_dim_multiplier") is not None:
            width = int(cfg["block_ffn_dim_multiplier"] * width)
        m = cfg["block_multiple_of"]
        width = m * ((width + m - 1) // m)
    return width


def tensors_of(cfg):
    """(name, ggml shape with the fastest dimension first, type, fill) in llama.cpp's LFM2 names."""
    d, vocab = cfg["hidden_size"], cfg["vocab_size"]
    ff, kernel = feed_forward_width(cfg), cfg["conv_L_cache"]
    head_dim = d // cfg["num_attention_heads"]
    kv = head_dim * cfg["num_key_value_heads"]
    out = [("token_embd.weight", [d, vocab], GGML_F16, "random"),
           ("token_embd_norm.weight", [d], GGML_F32, "one")]  # LFM2's final norm
    for i, kind in enumerate(cfg["layer_types"]):
        p = "blk.%d." % i
        out += [(p + "attn_norm.weight", [d], GGML_F32, "one"),
                (p + "ffn_norm.weight", [d], GGML_F32, "one"),
                (p + "ffn_gate.weight", [d, ff], GGML_F16, "random"),
                (p + "ffn_up.weight", [d, ff], GGML_F16, "random"),
                (p + "ffn_down.weight", [ff, d], GGML_F16, "random")]
        if kind == "conv":
            out += [(p + "shortconv.conv.weight", [kernel, d], GGML_F32, "random"),
                    (p + "shortconv.in_proj.weight", [d, 3 * d], GGML_F16, "random"),
                    (p + "shortconv.out_proj.weight", [d, d], GGML_F16, "random")]
        else:
            out += [(p + "attn_q_norm.weight", [head_dim], GGML_F32, "one"),
                    (p + "attn_k_norm.weight", [head_dim], GGML_F32, "one"),
                    (p + "attn_q.weight", [d, d], GGML_F16, "random"),
                    (p + "attn_k.weight", [d, kv], GGML_F16, "random"),
                    (p + "attn_v.weight", [d, kv], GGML_F16, "random"),
                    (p + "attn_output.weight", [d, d], GGML_F16, "random")]
    return out


def padding(n):
    return (ALIGNMENT - n % ALIGNMENT) % ALIGNMENT


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__.strip().splitlines()[-1])
    with open(sys.argv[1]) as f:
        cfg = json.load(f)
    cfg = cfg.get("lfm", cfg)
    if not cfg.get("tie_word_embeddings", True) or cfg.get("conv_bias", False):
        sys.exit("lfm2_gguf.py: only tied embeddings and bias-free convolutions are written")

    kvs = [gguf_kv("general.architecture", GGUF_STRING, "lfm2"),
           gguf_kv("general.name", GGUF_STRING, "eddy random LFM2"),
           gguf_kv("general.file_type", GGUF_UINT32, 1),  # mostly F16
           gguf_kv("general.alignment", GGUF_UINT32, ALIGNMENT),
           gguf_kv("lfm2.block_count", GGUF_UINT32, cfg["num_hidden_layers"]),
           gguf_kv("lfm2.context_length", GGUF_UINT32, cfg.get("max_position_embeddings", 128000)),
           gguf_kv("lfm2.embedding_length", GGUF_UINT32, cfg["hidden_size"]),
           gguf_kv("lfm2.feed_forward_length", GGUF_UINT32, feed_forward_width(cfg)),
           gguf_kv("lfm2.attention.head_count", GGUF_UINT32, cfg["num_attention_heads"]),
           gguf_kv("lfm2.attention.head_count_kv", GGUF_ARRAY,
                   [0 if t == "conv" else cfg["num_key_value_heads"] for t in cfg["layer_types"]]),
           gguf_kv("lfm2.rope.freq_base", GGUF_FLOAT32, float(cfg.get("rope_theta", 1e6))),
           gguf_kv("lfm2.attention.layer_norm_rms_epsilon", GGUF_FLOAT32, float(cfg["norm_eps"])),
           gguf_kv("lfm2.vocab_size", GGUF_UINT32, cfg["vocab_size"]),
           gguf_kv("lfm2.shortconv.l_cache", GGUF_UINT32, cfg["conv_L_cache"]),
           gguf_kv("tokenizer.ggml.model", GGUF_STRING, "no_vocab")]

    tensors = tensors_of(cfg)
    infos, offset, sizes = b"", 0, []
    for name, shape, dtype, _ in tensors:
        size = (4 if dtype == GGML_F32 else 2)
        for n in shape:
            size *= n
        infos += gguf_string(name) + struct.pack("<I", len(shape))
        infos += struct.pack("<%dQ" % len(shape), *shape) + struct.pack("<IQ", dtype, offset)
        sizes.append(size)
        offset += size + padding(size)
    header = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs)) + b"".join(kvs) + infos
    header += b"\0" * padding(len(header))

    rng = random.Random(1)
    values = [rng.uniform(-0.05, 0.05) for _ in range(1 << 20)]
    chunks = {GGML_F16: struct.pack("<%de" % len(values), *values),
              GGML_F32: struct.pack("<%df" % len(values), *values)}
    ones = struct.pack("<f", 1.0) * 4096

    def write_filled(f, chunk, size):
        while size > 0:
            piece = chunk[:size]
            f.write(piece)
            size -= len(piece)

    with open(sys.argv[2], "wb") as f:
        f.write(header)
        for (_, _, dtype, fill), size in zip(tensors, sizes):
            write_filled(f, ones if fill == "one" else chunks[dtype], size)
            f.write(b"\0" * padding(size))
    print("wrote %s (%d tensors)" % (sys.argv[2], len(tensors)), file=sys.stderr)


if __name__ == "__main__":
    main()
