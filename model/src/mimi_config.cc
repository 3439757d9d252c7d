#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <stdexcept>

#include "eddy/mimi.h"
#include "eddy/model_error.h"
#include "json_object.h"

namespace eddy {

using nlohmann::json;

namespace {

[[noreturn]] void Bad(const std::string& field, const std::string& why) {
  throw std::invalid_argument("mimi config: " + field + " " + why);
}

template <typename T>
void Read(const json& obj, const std::string& section, const char* key, T& out) {
  auto it = obj.find(key);
  if (it == obj.end()) return;
  try {
    out = it->get<T>();
  } catch (const json::exception&) {
    Bad(section.empty() ? std::string(key) : section + "." + key,
        "has the wrong type (" + std::string(it->type_name()) + ")");
  }
}

// A key we do not know could change the network; refuse rather than silently ignore it.
void RejectUnknown(const json& obj, const std::string& section,
                   const std::set<std::string>& known) {
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    if (!known.count(it.key())) {
      Bad(section.empty() ? it.key() : section + "." + it.key(), "is not a supported Mimi field");
    }
  }
}

const json& Section(const json& root, const char* name) {
  auto it = root.find(name);
  if (it == root.end() || !it->is_object()) Bad(name, "section is missing or not an object");
  return *it;
}

void ParseSeanet(const json& s, MimiConfig& c) {
  const std::string n = "seanet_kwargs";
  RejectUnknown(s, n,
                {"channels", "dimension", "causal", "n_filters", "n_residual_layers", "activation",
                 "activation_params", "compress", "dilation_base", "disable_norm_outer_blocks",
                 "kernel_size", "residual_kernel_size", "last_kernel_size", "norm", "pad_mode",
                 "ratios", "true_skip", "final_activation", "trim_right_ratio"});
  Read(s, n, "channels", c.channels);
  Read(s, n, "dimension", c.dimension);
  Read(s, n, "causal", c.seanet_causal);
  Read(s, n, "n_filters", c.n_filters);
  Read(s, n, "n_residual_layers", c.n_residual_layers);
  Read(s, n, "activation", c.activation);
  if (s.contains("activation_params")) {
    const json& p = s["activation_params"];
    if (!p.is_object()) Bad(n + ".activation_params", "is not an object");
    RejectUnknown(p, n + ".activation_params", {"alpha"});
    Read(p, n + ".activation_params", "alpha", c.activation_alpha);
  }
  Read(s, n, "compress", c.compress);
  Read(s, n, "dilation_base", c.dilation_base);
  Read(s, n, "disable_norm_outer_blocks", c.disable_norm_outer_blocks);
  Read(s, n, "kernel_size", c.kernel_size);
  Read(s, n, "residual_kernel_size", c.residual_kernel_size);
  Read(s, n, "last_kernel_size", c.last_kernel_size);
  Read(s, n, "norm", c.norm);
  Read(s, n, "pad_mode", c.pad_mode);
  Read(s, n, "ratios", c.ratios);
  Read(s, n, "true_skip", c.true_skip);
  if (s.contains("final_activation") && !s["final_activation"].is_null()) {
    Bad(n + ".final_activation", "must be null (the reference decoder has no final activation)");
  }
  if (s.contains("trim_right_ratio")) {
    double r = 1.0;
    Read(s, n, "trim_right_ratio", r);
    if (r != 1.0) Bad(n + ".trim_right_ratio", "must be 1.0");
  }
}

void ParseQuantizer(const json& q, MimiConfig& c) {
  const std::string n = "quantizer_kwargs";
  RejectUnknown(q, n, {"dimension", "n_q", "bins", "input_dimension", "output_dimension"});
  Read(q, n, "dimension", c.quantizer_dimension);
  Read(q, n, "n_q", c.n_q);
  Read(q, n, "bins", c.bins);
  Read(q, n, "input_dimension", c.quantizer_input_dimension);
  Read(q, n, "output_dimension", c.quantizer_output_dimension);
}

void ParseTransformer(const json& t, MimiConfig& c) {
  const std::string n = "transformer_kwargs";
  RejectUnknown(t, n,
                {"d_model", "num_heads", "num_layers", "causal", "layer_scale", "context",
                 "conv_layout", "max_period", "gating", "norm", "positional_embedding",
                 "dim_feedforward", "input_dimension", "output_dimensions"});
  Read(t, n, "d_model", c.d_model);
  Read(t, n, "num_heads", c.num_heads);
  Read(t, n, "num_layers", c.num_layers);
  Read(t, n, "causal", c.transformer_causal);
  Read(t, n, "layer_scale", c.layer_scale);
  Read(t, n, "context", c.context);
  Read(t, n, "conv_layout", c.conv_layout);
  Read(t, n, "max_period", c.max_period);
  Read(t, n, "gating", c.gating);
  Read(t, n, "norm", c.transformer_norm);
  Read(t, n, "positional_embedding", c.positional_embedding);
  Read(t, n, "dim_feedforward", c.dim_feedforward);
  Read(t, n, "input_dimension", c.transformer_input_dimension);
  Read(t, n, "output_dimensions", c.transformer_output_dimensions);
}

}  // namespace

int MimiConfig::hop_length() const {
  int hop = 1;
  for (int r : ratios) hop *= r;
  return hop;
}

int MimiConfig::upsample_stride() const {
  const double encoder_frame_rate = sample_rate / hop_length();
  return static_cast<int>(std::lround(encoder_frame_rate / frame_rate));
}

int MimiConfig::samples_per_frame() const {
  return static_cast<int>(std::lround(sample_rate / frame_rate));
}

void MimiConfig::Validate() const {
  auto positive = [](const char* field, double v) {
    if (!(v > 0)) Bad(field, "must be positive (got " + std::to_string(v) + ")");
  };
  if (channels != 1) Bad("seanet_kwargs.channels", "must be 1 (mono)");
  positive("seanet_kwargs.dimension", dimension);
  positive("seanet_kwargs.n_filters", n_filters);
  positive("seanet_kwargs.n_residual_layers", n_residual_layers);
  if (!seanet_causal)
    Bad("seanet_kwargs.causal", "must be true (only the causal Mimi is supported)");
  if (activation != "ELU")
    Bad("seanet_kwargs.activation", "must be \"ELU\" (got \"" + activation + "\")");
  if (activation_alpha != 1.0) Bad("seanet_kwargs.activation_params.alpha", "must be 1.0");
  if (norm != "none") {
    Bad("seanet_kwargs.norm", "must be \"none\" (got \"" + norm + "\"; fold weight norm first)");
  }
  if (pad_mode != "constant") Bad("seanet_kwargs.pad_mode", "must be \"constant\"");
  if (!true_skip) Bad("seanet_kwargs.true_skip", "must be true");
  positive("seanet_kwargs.compress", compress);
  positive("seanet_kwargs.dilation_base", dilation_base);
  positive("seanet_kwargs.kernel_size", kernel_size);
  positive("seanet_kwargs.residual_kernel_size", residual_kernel_size);
  positive("seanet_kwargs.last_kernel_size", last_kernel_size);
  if (disable_norm_outer_blocks < 0 ||
      disable_norm_outer_blocks > static_cast<int>(ratios.size()) + 2) {
    Bad("seanet_kwargs.disable_norm_outer_blocks", "is out of range");
  }
  if (ratios.empty()) Bad("seanet_kwargs.ratios", "must not be empty");
  for (int r : ratios) {
    if (r <= 0) Bad("seanet_kwargs.ratios", "must all be positive");
  }
  int channels_at_stage = n_filters << ratios.size();
  for (size_t i = 0; i < ratios.size(); ++i) {
    channels_at_stage /= 2;
    if (channels_at_stage % compress != 0) {
      Bad("seanet_kwargs.compress", "does not divide the residual block width");
    }
  }
  positive("quantizer_kwargs.dimension", quantizer_dimension);
  positive("quantizer_kwargs.bins", bins);
  if (quantizer_input_dimension != dimension) {
    Bad("quantizer_kwargs.input_dimension", "must equal seanet_kwargs.dimension");
  }
  if (quantizer_output_dimension != dimension) {
    Bad("quantizer_kwargs.output_dimension", "must equal seanet_kwargs.dimension");
  }
  if (num_codebooks_used < 1) Bad("num_codebooks_used", "must be at least 1");
  if (num_codebooks_used > n_q) Bad("num_codebooks_used", "exceeds quantizer_kwargs.n_q");
  if (d_model != dimension) Bad("transformer_kwargs.d_model", "must equal seanet_kwargs.dimension");
  positive("transformer_kwargs.num_heads", num_heads);
  positive("transformer_kwargs.num_layers", num_layers);
  if (d_model % num_heads != 0 || head_dim() % 2 != 0) {
    Bad("transformer_kwargs.num_heads", "must divide d_model into an even head dimension");
  }
  if (!transformer_causal) Bad("transformer_kwargs.causal", "must be true");
  if (!conv_layout) Bad("transformer_kwargs.conv_layout", "must be true");
  positive("transformer_kwargs.context", context);
  positive("transformer_kwargs.max_period", max_period);
  if (gating != "none")
    Bad("transformer_kwargs.gating", "must be \"none\" (got \"" + gating + "\")");
  if (transformer_norm != "layer_norm") Bad("transformer_kwargs.norm", "must be \"layer_norm\"");
  if (positional_embedding != "rope")
    Bad("transformer_kwargs.positional_embedding", "must be \"rope\"");
  positive("transformer_kwargs.dim_feedforward", dim_feedforward);
  if (transformer_input_dimension != d_model) {
    Bad("transformer_kwargs.input_dimension", "must equal d_model (no input projection)");
  }
  if (transformer_output_dimensions != std::vector<int>{d_model}) {
    Bad("transformer_kwargs.output_dimensions", "must be [d_model] (no output projection)");
  }
  positive("sample_rate", sample_rate);
  positive("frame_rate", frame_rate);
  const double per_frame = sample_rate / frame_rate;
  if (std::abs(per_frame - std::round(per_frame)) > 1e-9) {
    Bad("frame_rate", "must divide sample_rate into whole frames");
  }
  const double stride = sample_rate / hop_length() / frame_rate;
  if (stride < 1.0 || std::abs(stride - std::round(stride)) > 1e-9) {
    Bad("frame_rate",
        "must be the SEANet frame rate (sample_rate / prod(ratios)) divided by a "
        "whole number");
  }
}

MimiConfig MimiConfig::Parse(const std::string& json_text, const std::string& origin) {
  const json root = ParseJsonObject(json_text, origin);
  MimiConfig c;
  try {
    RejectUnknown(root, "",
                  {"seanet_kwargs", "quantizer_kwargs", "transformer_kwargs", "sample_rate",
                   "frame_rate", "num_codebooks_used"});
    ParseSeanet(Section(root, "seanet_kwargs"), c);
    ParseQuantizer(Section(root, "quantizer_kwargs"), c);
    ParseTransformer(Section(root, "transformer_kwargs"), c);
    Read(root, "", "sample_rate", c.sample_rate);
    Read(root, "", "frame_rate", c.frame_rate);
    Read(root, "", "num_codebooks_used", c.num_codebooks_used);
    c.Validate();
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(origin + ": " + e.what());
  }
  return c;
}

MimiConfig MimiConfig::Load(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) throw ModelError("cannot open " + path.string());
  std::stringstream ss;
  ss << in.rdbuf();
  return Parse(ss.str(), path.string());
}

MimiConfig MimiConfig::ForModelDir(const std::filesystem::path& dir) {
  const auto file = dir / "mimi_config.json";
  if (std::filesystem::exists(file)) return Load(file);
  MimiConfig c;
  c.Validate();
  return c;
}

}  // namespace eddy
