// Writes a Mimi decoder checkpoint with random weights for a given MimiConfig (tests and
// bench_mimi; never committed). Tensor names and shapes follow the reference's module tree.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "eddy/mimi.h"

namespace eddy::test {

struct RandomTensor {
  std::string name;
  std::vector<int64_t> shape;
  std::vector<float> data;
};

inline void WriteSafeTensorsF32(const std::filesystem::path& path,
                                const std::vector<RandomTensor>& tensors) {
  nlohmann::json header = nlohmann::json::object();
  uint64_t offset = 0;
  for (const RandomTensor& t : tensors) {
    const uint64_t bytes = t.data.size() * sizeof(float);
    header[t.name] = {
        {"dtype", "F32"}, {"shape", t.shape}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string text = header.dump();
  while (text.size() % 8 != 0) text.push_back(' ');
  std::ofstream out(path, std::ios::binary);
  const uint64_t n = text.size();
  out.write(reinterpret_cast<const char*>(&n), 8);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  for (const RandomTensor& t : tensors) {
    out.write(reinterpret_cast<const char*>(t.data.data()),
              static_cast<std::streamsize>(t.data.size() * sizeof(float)));
  }
}

// Weights scaled by 1/sqrt(fan_in) so that activations stay O(1) through the network.
inline std::vector<RandomTensor> RandomMimiTensors(const MimiConfig& c, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<RandomTensor> out;
  auto add = [&](const std::string& name, std::vector<int64_t> shape, float scale, float mean = 0) {
    int64_t n = 1;
    for (int64_t s : shape) n *= s;
    std::normal_distribution<float> dist(mean, scale);
    RandomTensor t{name, std::move(shape), std::vector<float>(static_cast<size_t>(n))};
    for (float& v : t.data) v = dist(rng);
    out.push_back(std::move(t));
  };
  auto add_codebook = [&](const std::string& prefix) {
    add(prefix + ".embedding_sum", {c.bins, c.quantizer_dimension}, 1.0f);
    add(prefix + ".cluster_usage", {c.bins}, 0.3f, 1.2f);
    add(prefix + "._initialized", {1}, 0.0f, 1.0f);
  };
  const int dim = c.dimension, qdim = c.quantizer_dimension;
  add_codebook("quantizer.rvq_first.vq.layers.0._codebook");
  for (int k = 0; k + 1 < c.num_codebooks_used; ++k) {
    add_codebook("quantizer.rvq_rest.vq.layers." + std::to_string(k) + "._codebook");
  }
  const float qs = 1.0f / std::sqrt(static_cast<float>(qdim));
  add("quantizer.rvq_first.output_proj.weight", {dim, qdim, 1}, qs);
  add("quantizer.rvq_rest.output_proj.weight", {dim, qdim, 1}, qs);
  add("upsample.convtr.convtr.convtr.weight", {dim, 1, 2 * c.upsample_stride()}, 0.5f);
  const int d = c.d_model, ff = c.dim_feedforward;
  const float ds = 1.0f / std::sqrt(static_cast<float>(d));
  for (int l = 0; l < c.num_layers; ++l) {
    const std::string p = "decoder_transformer.transformer.layers." + std::to_string(l) + ".";
    add(p + "self_attn.in_projs.0.weight", {3 * d, d}, ds);
    add(p + "self_attn.out_projs.0.weight", {d, d}, ds);
    add(p + "norm1.weight", {d}, 0.1f, 1.0f);
    add(p + "norm1.bias", {d}, 0.1f);
    add(p + "norm2.weight", {d}, 0.1f, 1.0f);
    add(p + "norm2.bias", {d}, 0.1f);
    add(p + "linear1.weight", {ff, d}, ds);
    add(p + "linear2.weight", {d, ff}, 1.0f / std::sqrt(static_cast<float>(ff)));
    add(p + "layer_scale_1.scale", {d}, 0.1f, 0.3f);
    add(p + "layer_scale_2.scale", {d}, 0.1f, 0.3f);
  }
  auto conv = [&](const std::string& prefix, int out_ch, int in_ch, int k) {
    add(prefix + ".weight", {out_ch, in_ch, k}, 1.0f / std::sqrt(static_cast<float>(in_ch * k)));
    add(prefix + ".bias", {out_ch}, 0.05f);
  };
  auto module = [](int i) { return "decoder.model." + std::to_string(i) + "."; };
  int mult = 1 << c.ratios.size();
  int index = 0;
  conv(module(index++) + "conv.conv", mult * c.n_filters, dim, c.kernel_size);
  for (int ratio : c.ratios) {
    ++index;
    const int width = mult * c.n_filters;
    add(module(index) + "convtr.convtr.weight", {width, width / 2, 2 * ratio},
        1.0f / std::sqrt(static_cast<float>(width)));
    add(module(index) + "convtr.convtr.bias", {width / 2}, 0.05f);
    ++index;
    for (int j = 0; j < c.n_residual_layers; ++j) {
      const int hidden = (width / 2) / c.compress;
      conv(module(index) + "block.1.conv.conv", hidden, width / 2, c.residual_kernel_size);
      conv(module(index) + "block.3.conv.conv", width / 2, hidden, 1);
      ++index;
    }
    mult /= 2;
  }
  ++index;
  conv(module(index) + "conv.conv", c.channels, c.n_filters, c.last_kernel_size);
  return out;
}

inline void WriteRandomMimi(const std::filesystem::path& path, const MimiConfig& c, uint32_t seed) {
  WriteSafeTensorsF32(path, RandomMimiTensors(c, seed));
}

}  // namespace eddy::test
