// The model directory readers: safetensors, config.json, --model resolution. Every malformed input
// must produce a ModelError whose message says what is wrong; these tests also run under ASan.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "eddy/config.h"
#include "eddy/model_dir.h"
#include "eddy/safetensors.h"
#include "golden.h"

namespace eddy {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "eddy_test_XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

void WriteBytes(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// Serialises a safetensors file from a header object and a raw data section.
std::string SafetensorsBytes(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  uint64_t n = header.size();
  std::memcpy(out.data(), &n, 8);
  return out + header + data;
}

std::string FloatBytes(std::initializer_list<float> values) {
  std::string s(values.size() * 4, '\0');
  size_t i = 0;
  for (float v : values) std::memcpy(s.data() + 4 * i++, &v, 4);
  return s;
}

// Opens bytes as a safetensors file and returns the error message ("" when it opened).
std::string OpenError(const TempDir& dir, const std::string& bytes) {
  const auto path = dir.path() / "t.safetensors";
  WriteBytes(path, bytes);
  try {
    SafeTensors::Open(path);
  } catch (const ModelError& e) {
    return e.what();
  }
  return "";
}

TEST(SafeTensors, ReadsValuesOfEveryDtype) {
  TempDir dir;
  json h;
  h["a"] = {{"dtype", "F32"}, {"shape", {2}}, {"data_offsets", {0, 8}}};
  h["b"] = {{"dtype", "BF16"}, {"shape", {2}}, {"data_offsets", {8, 12}}};
  h["c"] = {{"dtype", "F16"}, {"shape", {2}}, {"data_offsets", {12, 16}}};
  h["d"] = {{"dtype", "I64"}, {"shape", {1}}, {"data_offsets", {16, 24}}};
  h["__metadata__"] = {{"format", "pt"}};
  std::string data = FloatBytes({1.5f, -2.0f});
  const uint16_t bf16[2] = {FloatToBf16(3.0f), FloatToBf16(-0.25f)};
  const uint16_t f16[2] = {0x3C00 /* 1.0 */, 0xC500 /* -5.0 */};
  const int64_t i64 = 42;
  data.append(reinterpret_cast<const char*>(bf16), 4);
  data.append(reinterpret_cast<const char*>(f16), 4);
  data.append(reinterpret_cast<const char*>(&i64), 8);
  const auto path = dir.path() / "ok.safetensors";
  WriteBytes(path, SafetensorsBytes(h.dump(), data));

  const auto st = SafeTensors::Open(path);
  EXPECT_EQ(st.metadata().at("format"), "pt");
  EXPECT_EQ(ToFloat32(st.Get("a", {2})), (std::vector<float>{1.5f, -2.0f}));
  EXPECT_EQ(ToFloat32(st.Get("b")), (std::vector<float>{3.0f, -0.25f}));
  EXPECT_EQ(ToFloat32(st.Get("c")), (std::vector<float>{1.0f, -5.0f}));
  EXPECT_EQ(*static_cast<const int64_t*>(st.Get("d").data), 42);
  EXPECT_THROW(ToFloat32(st.Get("d")), ModelError);
}

TEST(SafeTensors, MissingFile) {
  try {
    SafeTensors::Open("/nonexistent/dir/model.safetensors");
    FAIL() << "no error";
  } catch (const ModelError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/dir/model.safetensors"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("cannot open"), std::string::npos);
  }
}

TEST(SafeTensors, TooShortForAHeader) {
  TempDir dir;
  EXPECT_NE(OpenError(dir, "").find("truncated"), std::string::npos);
  EXPECT_NE(OpenError(dir, "abc").find("truncated"), std::string::npos);
}

TEST(SafeTensors, HeaderLengthLargerThanFile) {
  TempDir dir;
  std::string bytes = SafetensorsBytes("{}", "");
  const uint64_t huge = 1000;
  std::memcpy(bytes.data(), &huge, 8);
  EXPECT_NE(OpenError(dir, bytes).find("larger than the file"), std::string::npos);
  const uint64_t absurd = ~0ull;
  std::memcpy(bytes.data(), &absurd, 8);
  EXPECT_NE(OpenError(dir, bytes).find("larger than the file"), std::string::npos);
}

TEST(SafeTensors, InvalidJsonHeader) {
  TempDir dir;
  EXPECT_NE(OpenError(dir, SafetensorsBytes("{\"a\": [", "")).find("invalid JSON header"),
            std::string::npos);
  EXPECT_NE(OpenError(dir, SafetensorsBytes("[1, 2]", "")).find("not a JSON object"),
            std::string::npos);
}

TEST(SafeTensors, OffsetsOutOfRange) {
  TempDir dir;
  json h;
  h["w"] = {{"dtype", "F32"}, {"shape", {4}}, {"data_offsets", {0, 16}}};
  const std::string msg = OpenError(dir, SafetensorsBytes(h.dump(), FloatBytes({1, 2})));
  EXPECT_NE(msg.find("'w'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("out of range"), std::string::npos) << msg;
  json reversed;
  reversed["w"] = {{"dtype", "F32"}, {"shape", {0}}, {"data_offsets", {8, 4}}};
  EXPECT_NE(
      OpenError(dir, SafetensorsBytes(reversed.dump(), FloatBytes({1, 2}))).find("out of range"),
      std::string::npos);
}

TEST(SafeTensors, TruncatedDataSection) {
  TempDir dir;
  json h;
  h["w"] = {{"dtype", "F32"}, {"shape", {2, 2}}, {"data_offsets", {0, 16}}};
  const std::string full = SafetensorsBytes(h.dump(), FloatBytes({1, 2, 3, 4}));
  EXPECT_EQ(OpenError(dir, full), "");
  for (size_t cut = 1; cut < full.size(); ++cut) {
    EXPECT_NE(OpenError(dir, full.substr(0, cut)), "") << "file cut to " << cut << " bytes opened";
  }
}

TEST(SafeTensors, OverlappingTensors) {
  TempDir dir;
  json h;
  h["first"] = {{"dtype", "F32"}, {"shape", {2}}, {"data_offsets", {0, 8}}};
  h["second"] = {{"dtype", "F32"}, {"shape", {2}}, {"data_offsets", {4, 12}}};
  const std::string msg = OpenError(dir, SafetensorsBytes(h.dump(), FloatBytes({1, 2, 3})));
  EXPECT_NE(msg.find("overlap"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'first'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'second'"), std::string::npos) << msg;
}

TEST(SafeTensors, SizeDisagreesWithShape) {
  TempDir dir;
  json h;
  h["w"] = {{"dtype", "F32"}, {"shape", {3}}, {"data_offsets", {0, 8}}};
  const std::string msg = OpenError(dir, SafetensorsBytes(h.dump(), FloatBytes({1, 2})));
  EXPECT_NE(msg.find("needs 12"), std::string::npos) << msg;
}

TEST(SafeTensors, UnsupportedDtype) {
  TempDir dir;
  json h;
  h["w"] = {{"dtype", "F8_E4M3"}, {"shape", {2}}, {"data_offsets", {0, 2}}};
  const std::string msg = OpenError(dir, SafetensorsBytes(h.dump(), "ab"));
  EXPECT_NE(msg.find("unsupported dtype 'F8_E4M3'"), std::string::npos) << msg;
}

TEST(SafeTensors, MalformedEntries) {
  TempDir dir;
  for (const char* header : {R"({"w": 5})", R"({"w": {"shape": [1], "data_offsets": [0, 4]}})",
                             R"({"w": {"dtype": "F32", "data_offsets": [0, 4]}})",
                             R"({"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}})",
                             R"({"w": {"dtype": "F32", "shape": [1]}})",
                             R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0]}})",
                             R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [-4, 0]}})"}) {
    const std::string msg = OpenError(dir, SafetensorsBytes(header, FloatBytes({1})));
    EXPECT_NE(msg.find("'w'"), std::string::npos) << header << " -> " << msg;
  }
}

TEST(SafeTensors, MissingTensorAndWrongShapeAreNamed) {
  TempDir dir;
  json h;
  h["layer.weight"] = {{"dtype", "F32"}, {"shape", {2, 2}}, {"data_offsets", {0, 16}}};
  const auto path = dir.path() / "m.safetensors";
  WriteBytes(path, SafetensorsBytes(h.dump(), FloatBytes({1, 2, 3, 4})));
  const auto st = SafeTensors::Open(path);
  try {
    st.Get("layer.bias");
    FAIL();
  } catch (const ModelError& e) {
    EXPECT_NE(std::string(e.what()).find("tensor 'layer.bias' is missing"), std::string::npos);
  }
  try {
    st.Get("layer.weight", {4, 1});
    FAIL();
  } catch (const ModelError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("'layer.weight'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("[2, 2]"), std::string::npos) << msg;
    EXPECT_NE(msg.find("expected [4, 1]"), std::string::npos) << msg;
  }
}

TEST(SafeTensors, RandomCorruptionNeverCrashes) {
  TempDir dir;
  const auto golden = test::GoldenModelDir() / "model.safetensors";
  std::ifstream in(golden, std::ios::binary);
  ASSERT_TRUE(in) << golden;
  std::string header_and_some(64 * 1024, '\0');
  in.read(header_and_some.data(), static_cast<std::streamsize>(header_and_some.size()));
  header_and_some.resize(static_cast<size_t>(in.gcount()));
  uint64_t state = 0x9E3779B97F4A7C15ull;
  auto next = [&] { return state = state * 6364136223846793005ull + 1442695040888963407ull; };
  for (int trial = 0; trial < 300; ++trial) {
    std::string bytes = header_and_some;
    for (int flips = 0; flips < 4; ++flips) {
      bytes[next() % std::min<size_t>(bytes.size(), 4096)] = static_cast<char>(next() >> 56);
    }
    OpenError(dir, bytes);  // must either open or throw ModelError; ASan watches the rest
  }
}

TEST(SafeTensors, GoldenCheckpointOpens) {
  const auto st = SafeTensors::Open(test::GoldenModelDir() / "model.safetensors");
  EXPECT_TRUE(st.Has("lfm.embed_tokens.weight"));
}

// ---- config.json ----

json GoldenConfigJson() {
  std::ifstream in(test::GoldenModelDir() / "config.json");
  return json::parse(in);
}

std::string ParseError(const json& j) {
  try {
    AudioModelConfig::Parse(j.dump(), "config.json");
  } catch (const ModelError& e) {
    return e.what();
  }
  return "";
}

TEST(Config, GoldenConfigParsesIntoConsistentValues) {
  const json j = GoldenConfigJson();
  const auto c = AudioModelConfig::Load(test::GoldenModelDir() / "config.json");
  EXPECT_EQ(c.lfm.hidden_size, j["lfm"]["hidden_size"].get<int>());
  EXPECT_EQ(c.lfm.layer_types.size(), j["lfm"]["layer_types"].size());
  EXPECT_EQ(c.encoder.d_model, j["encoder"]["d_model"].get<int>());
  EXPECT_EQ(c.depthformer.dim, j["depthformer"]["dim"].get<int>());
  EXPECT_EQ(c.interleaved_n_text, j["interleaved_n_text"].get<int>());
  EXPECT_EQ(c.preprocessor.features, j["preprocessor"]["features"].get<int>());
}

TEST(Config, FfRuleMatchesSpecExamples) {
  LfmConfig lfm;  // the real 1.2B backbone: 12288 declared -> 8192
  lfm.intermediate_size = 12288;
  lfm.block_multiple_of = 256;
  EXPECT_EQ(lfm.ff_dim(), 8192);
  lfm.block_auto_adjust_ff_dim = false;
  EXPECT_EQ(lfm.ff_dim(), 12288);
  DepthformerConfig depth;  // dim 1024 -> 2816, dim 64 -> 256
  depth.dim = 1024;
  EXPECT_EQ(depth.ff_dim(), 2816);
  depth.dim = 64;
  EXPECT_EQ(depth.ff_dim(), 256);
}

TEST(Config, FullAttnIdxsIsAcceptedInsteadOfLayerTypes) {
  json j = GoldenConfigJson();
  const auto expected = AudioModelConfig::Parse(j.dump(), "a").lfm.layer_types;
  std::vector<int> idxs;
  for (size_t i = 0; i < expected.size(); ++i) {
    if (expected[i] == LayerKind::kAttention) idxs.push_back(static_cast<int>(i));
  }
  j["lfm"].erase("layer_types");
  j["lfm"]["full_attn_idxs"] = idxs;
  EXPECT_EQ(AudioModelConfig::Parse(j.dump(), "b").lfm.layer_types, expected);
}

TEST(Config, BadFieldsAreNamed) {
  struct Case {
    const char* field;
    std::function<void(json&)> edit;
  };
  const std::vector<Case> cases = {
      {"lfm.layer_types", [](json& j) { j["lfm"]["layer_types"].push_back("conv"); }},
      {"lfm.layer_types[0]", [](json& j) { j["lfm"]["layer_types"][0] = "mamba"; }},
      {"lfm.num_attention_heads", [](json& j) { j["lfm"]["num_attention_heads"] = 3; }},
      {"lfm.num_key_value_heads", [](json& j) { j["lfm"]["num_key_value_heads"] = 3; }},
      {"lfm.hidden_size", [](json& j) { j["lfm"]["hidden_size"] = "wide"; }},
      {"lfm.num_hidden_layers", [](json& j) { j["lfm"].erase("num_hidden_layers"); }},
      {"lfm", [](json& j) { j.erase("lfm"); }},
      {"encoder.subsampling_factor", [](json& j) { j["encoder"]["subsampling_factor"] = 4; }},
      {"encoder.self_attention_model",
       [](json& j) { j["encoder"]["self_attention_model"] = "abs_pos"; }},
      {"encoder.n_heads", [](json& j) { j["encoder"]["n_heads"] = 5; }},
      {"depthformer.dim", [](json& j) { j["depthformer"]["dim"] = 48; }},
      {"preprocessor.sample_rate", [](json& j) { j["preprocessor"]["sample_rate"] = 8000; }},
      {"preprocessor.normalize", [](json& j) { j["preprocessor"]["normalize"] = "all_features"; }},
      {"interleaved_n_text", [](json& j) { j["interleaved_n_text"] = 0; }},
      {"codebooks", [](json& j) { j["codebooks"] = "eight"; }},
  };
  for (const auto& c : cases) {
    json j = GoldenConfigJson();
    c.edit(j);
    const std::string msg = ParseError(j);
    EXPECT_NE(msg.find(std::string(c.field) + ":"), std::string::npos)
        << "expected the message to name " << c.field << ", got: " << msg;
  }
}

TEST(Config, InvalidJsonAndMissingFile) {
  try {
    AudioModelConfig::Parse("{ not json", "dir/config.json");
    FAIL();
  } catch (const ModelError& e) {
    EXPECT_NE(std::string(e.what()).find("dir/config.json: invalid JSON"), std::string::npos);
  }
  EXPECT_THROW(AudioModelConfig::Load("/nonexistent/config.json"), ModelError);
}

// ---- --model resolution ----

class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old, had_ = true;
    ::setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() { had_ ? ::setenv(name_, old_.c_str(), 1) : ::unsetenv(name_); }

 private:
  const char* name_;
  std::string old_;
  bool had_ = false;
};

TEST(ModelDir, PathWithConfigIsUsedAsIs) {
  EXPECT_EQ(ResolveModelDir(test::GoldenModelDir().string()), test::GoldenModelDir());
}

TEST(ModelDir, RepoIdResolvesThroughRefsMain) {
  TempDir home;
  ScopedEnv hf_home("HF_HOME", home.path().string());
  ScopedEnv unset_cache("HF_HUB_CACHE", "");
  ::unsetenv("HF_HUB_CACHE");
  const fs::path repo = home.path() / "hub" / "models--Org--Some-Model";
  EXPECT_EQ(RepoCacheDir("Org/Some-Model"), repo);
  fs::create_directories(repo / "snapshots" / "abc123");
  fs::create_directories(repo / "snapshots" / "old999");
  fs::create_directories(repo / "refs");
  WriteBytes(repo / "snapshots" / "abc123" / "config.json", "{}");
  WriteBytes(repo / "snapshots" / "old999" / "config.json", "{}");
  WriteBytes(repo / "refs" / "main", "abc123");
  EXPECT_EQ(ResolveModelDir("Org/Some-Model"), repo / "snapshots" / "abc123");
}

TEST(ModelDir, NotFoundSaysWhereItLooked) {
  TempDir home;
  ScopedEnv hf_home("HF_HUB_CACHE", (home.path() / "cache").string());
  try {
    ResolveModelDir("Nobody/Nothing");
    FAIL();
  } catch (const ModelError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("Nobody/Nothing"), std::string::npos) << msg;
    EXPECT_NE(msg.find((home.path() / "cache" / "models--Nobody--Nothing").string()),
              std::string::npos)
        << msg;
    EXPECT_NE(msg.find("eddy pull"), std::string::npos) << msg;
  }
  EXPECT_THROW(ResolveModelDir(home.path().string()), ModelError);  // a dir without config.json
}

}  // namespace
}  // namespace eddy
