// Golden tests of the log-mel front end against the reference's mel/ outputs. Every size and the
// list of inputs come from the golden set's params.json / meta.json / conditioning.json and the
// .npy shapes, so the tests run unchanged on another reference set.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "eddy/mel.h"
#include "golden.h"
#include "npy.h"

namespace eddy {
namespace {

using nlohmann::json;
using test::Compare;
using test::Describe;
using test::GoldenFile;
using test::LoadNpy;
using test::LoadRawF32;
using test::NpyArray;
using test::WithinTolerance;

// The golden README's acceptance: log-mel features within atol 2e-3, except in ill-conditioned
// bins (the normalised features of bins the set's conditioning.json lists).
constexpr double kFeatureAbsoluteTolerance = 2e-3;
// Window and filterbank are built with the reference's own roundings; allow a few float ulps for
// libm differences (cos, log, exp) between the machines.
constexpr double kTableRelativeTolerance = 1e-6;

json ReadJson(const std::string& relative) {
  std::ifstream in(GoldenFile(relative));
  if (!in) throw std::runtime_error("cannot open golden file " + relative);
  return json::parse(in);
}

MelConfig GoldenMelConfig() {
  const json p = ReadJson("mel/params.json").at("preprocessor_config");
  MelConfig c;
  c.sample_rate = p.value("sample_rate", c.sample_rate);
  c.window_size = p.value("window_size", c.window_size);
  c.window_stride = p.value("window_stride", c.window_stride);
  c.window = p.value("window", c.window);
  c.features = p.value("features", c.features);
  c.n_fft = p.value("n_fft", c.n_fft);
  c.log = p.value("log", c.log);
  c.normalize = p.value("normalize", c.normalize);
  c.frame_splicing = p.value("frame_splicing", c.frame_splicing);
  c.dither = p.value("dither", c.dither);
  c.pad_to = p.value("pad_to", c.pad_to);
  c.pad_value = p.value("pad_value", c.pad_value);
  return c;
}

void ExpectShape(const NpyArray& a, std::vector<int64_t> shape, const std::string& what) {
  ASSERT_EQ(a.shape, shape) << what << ": golden shape differs from the computed one";
}

TEST(MelGolden, Window) {
  const MelFrontend frontend(GoldenMelConfig());
  const NpyArray ref = LoadNpy(GoldenFile("mel/window.npy"));
  ExpectShape(ref, {frontend.win_length()}, "window.npy");
  const test::Diff d = Compare(frontend.window().data(), ref.f32.data(), ref.f32.size());
  EXPECT_TRUE(WithinTolerance(d, kTableRelativeTolerance)) << Describe(d);
  size_t identical = 0;
  for (size_t i = 0; i < ref.f32.size(); ++i) identical += frontend.window()[i] == ref.f32[i];
  std::cout << "window: " << Describe(d) << "; bitwise identical " << identical << "/"
            << ref.f32.size() << "\n";
}

TEST(MelGolden, Filterbank) {
  const MelFrontend frontend(GoldenMelConfig());
  const NpyArray ref = LoadNpy(GoldenFile("mel/mel_filterbank.npy"));
  ExpectShape(ref, {frontend.features(), frontend.spectrum_bins()}, "mel_filterbank.npy");
  const test::Diff d = Compare(frontend.filterbank().data(), ref.f32.data(), ref.f32.size());
  EXPECT_TRUE(WithinTolerance(d, kTableRelativeTolerance)) << Describe(d);
  size_t identical = 0;
  for (size_t i = 0; i < ref.f32.size(); ++i) identical += frontend.filterbank()[i] == ref.f32[i];
  std::cout << "filterbank: " << Describe(d) << "; bitwise identical " << identical << "/"
            << ref.f32.size() << "\n";
}

// The 16 kHz inputs of meta.json (other rates belong to the resampler's tests).
std::vector<std::string> SixteenKilohertzInputs(const MelConfig& config) {
  std::vector<std::string> names;
  const json meta = ReadJson("mel/meta.json");
  for (const auto& [name, entry] : meta.items()) {
    if (entry.contains("sample_rate") && entry["sample_rate"].get<int>() == config.sample_rate) {
      names.push_back(name);
    }
  }
  return names;
}

void CheckInput(const MelFrontend& frontend, const std::string& name) {
  SCOPED_TRACE("mel input " + name);
  const json meta = ReadJson("mel/meta.json").at(name);
  const json conditioning = ReadJson("mel/conditioning.json").at("inputs").at(name);
  const std::vector<float> samples = LoadRawF32(GoldenFile("mel/" + name + ".f32"));
  ASSERT_EQ(static_cast<int64_t>(samples.size()), meta.at("n_samples").get<int64_t>());

  const int features = frontend.features();
  const int64_t frames = frontend.OutputFrames(static_cast<int64_t>(samples.size()));
  const int64_t valid = frontend.ValidFrames(static_cast<int64_t>(samples.size()));
  ASSERT_EQ(valid, meta.at("seq_len").get<int64_t>());
  const NpyArray raw_ref = LoadNpy(GoldenFile("mel/" + name + ".logmel_unnormalized.npy"));
  const NpyArray mel_ref = LoadNpy(GoldenFile("mel/" + name + ".mel.npy"));
  ExpectShape(raw_ref, {features, frames}, name + ".logmel_unnormalized.npy");
  ExpectShape(mel_ref, {features, frames}, name + ".mel.npy");

  // Unnormalised log-mel over the valid frames (the reference masked the rest to pad_value).
  const LogMelFeatures raw = frontend.ComputeRawLogMel(samples);
  ASSERT_EQ(raw.frames, frames);
  std::vector<float> raw_valid, raw_ref_valid;
  for (int m = 0; m < features; ++m) {
    for (int64_t t = 0; t < valid; ++t) {
      raw_valid.push_back(raw.at(m, t));
      raw_ref_valid.push_back(raw_ref.f32[static_cast<size_t>(m * frames + t)]);
    }
  }
  const test::Diff raw_diff = Compare(raw_valid.data(), raw_ref_valid.data(), raw_valid.size());
  EXPECT_TRUE(WithinTolerance(raw_diff, 0.0, kFeatureAbsoluteTolerance))
      << "unnormalised: " << Describe(raw_diff);
  std::cout << name << " unnormalised: " << Describe(raw_diff) << "\n";

  // Normalised features, every frame (the masked ones included), skipping the bins the golden
  // set marks ill-conditioned; those must still be finite.
  const std::set<int> ill_conditioned =
      conditioning.at("ill_conditioned_bins").get<std::set<int>>();
  const LogMelFeatures mel = frontend.ComputeLogMel(samples);
  ASSERT_EQ(mel.frames, frames);
  std::vector<float> mel_cmp, mel_ref_cmp;
  for (int m = 0; m < features; ++m) {
    for (int64_t t = 0; t < frames; ++t) {
      const float value = mel.at(m, t);
      ASSERT_TRUE(std::isfinite(value)) << "bin " << m << " frame " << t;
      if (t >= valid) {
        EXPECT_EQ(value, static_cast<float>(frontend.config().pad_value));
      }
      if (ill_conditioned.count(m) != 0) continue;
      mel_cmp.push_back(value);
      mel_ref_cmp.push_back(mel_ref.f32[static_cast<size_t>(m * frames + t)]);
    }
  }
  if (!mel_cmp.empty()) {
    const test::Diff d = Compare(mel_cmp.data(), mel_ref_cmp.data(), mel_cmp.size());
    EXPECT_TRUE(WithinTolerance(d, 0.0, kFeatureAbsoluteTolerance))
        << "normalised: " << Describe(d);
    std::cout << name << " normalised (" << features - static_cast<int>(ill_conditioned.size())
              << " well-conditioned bins): " << Describe(d) << "\n";
  } else {
    std::cout << name << " normalised: every bin ill-conditioned, checked finite only\n";
  }
}

// EDDY_MEL_INPUT (set by CTest per input) names one input of meta.json; without it every 16 kHz
// input of the golden set is checked.
TEST(MelGolden, Input) {
  const MelFrontend frontend(GoldenMelConfig());
  const std::vector<std::string> inputs = SixteenKilohertzInputs(frontend.config());
  const char* only = std::getenv("EDDY_MEL_INPUT");
  if (only != nullptr && *only != '\0') {
    const bool listed = std::find(inputs.begin(), inputs.end(), only) != inputs.end();
    ASSERT_TRUE(listed) << "mel input '" << only << "' is not a " << frontend.config().sample_rate
                        << " Hz input of mel/meta.json in " << test::GoldenDir();
    CheckInput(frontend, only);
    return;
  }
  ASSERT_FALSE(inputs.empty()) << "mel/meta.json lists no inputs";
  for (const std::string& name : inputs) CheckInput(frontend, name);
}

}  // namespace
}  // namespace eddy
