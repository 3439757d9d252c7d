// End-to-end greedy generation against the reference (golden f_e2e): the prompt given as the
// reference built it (text ids, log-mel of the audio-in clips, audio-out history, modality
// flags), then the sequential or interleaved state machine driving the real model. Token ids,
// audio codes and the order of outputs must be identical; hidden states and logits close.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "eddy/audio_model.h"
#include "eddy/engine.h"
#include "eddy/generation.h"
#include "golden.h"
#include "golden_prompt.h"

namespace eddy {
namespace {

namespace fs = std::filesystem;
using test::LoadNpy;

std::shared_ptr<const AudioModel> Model() {
  static auto model = AudioModel::Load(test::GoldenModelDir());
  return model;
}

void ExpectClose(const std::vector<float>& actual, const test::NpyArray& expected, size_t row,
                 const std::string& what) {
  const size_t width = actual.size();
  ASSERT_GE(expected.f32.size(), (row + 1) * width) << what;
  const auto d = test::Compare(actual.data(), expected.f32.data() + row * width, width);
  EXPECT_TRUE(test::WithinTolerance(d, 1e-4))
      << what << " row " << row << ": " << test::Describe(d);
}

void RunCase(const std::string& name) {
  SCOPED_TRACE("case " + name);
  const fs::path dir = test::GoldenDir() / "model" / "outputs" / "f_e2e" / name;
  ASSERT_TRUE(fs::is_directory(dir)) << dir;
  const auto model = Model();
  const PromptInputs prompt = test::LoadGoldenPrompt(dir);

  const auto expected_prefill = LoadNpy(dir / "prefill_embeddings.npy");
  const auto rows = model->AssembleEmbeddings(prompt);
  ASSERT_EQ(rows.size(), expected_prefill.f32.size());
  ExpectClose(rows, expected_prefill, 0, "prefill_embeddings");

  std::ifstream meta_in(dir / "outputs.json");
  const auto meta = nlohmann::json::parse(meta_in);
  GenerationLimits limits;
  limits.max_new_tokens = meta.at("max_new_tokens").get<int>();

  ModelBackend backend(model, GenerationSampling{});  // greedy text and audio, as the vectors
  StepTrace trace;
  backend.set_trace(&trace);
  backend.Begin(prompt);
  std::vector<int64_t> text_ids, modality, codes_frame_major;
  const auto sink = [&](const GenerationOutput& o) {
    modality.push_back(o.kind == OutputKind::kText ? 1 : 3);
    if (o.kind == OutputKind::kText) {
      text_ids.push_back(o.text_id);
    } else {
      codes_frame_major.insert(codes_frame_major.end(), o.codes.begin(), o.codes.end());
    }
  };
  // The reference names its cases by generator: "*sequential*" ran generate_sequential.
  if (name.find("sequential") != std::string::npos) {
    GenerateSequential(backend, limits, {}, sink);
  } else {
    GenerateInterleaved(backend, model->config().interleaved_n_text,
                        model->config().interleaved_n_audio, limits, {}, sink);
  }

  EXPECT_EQ(modality, LoadNpy(dir / "out_modality.npy").i64);
  EXPECT_EQ(text_ids, LoadNpy(dir / "out_text_ids.npy").i64);
  const auto codes = LoadNpy(dir / "out_audio_codes.npy");  // [codebooks, frames]
  const int64_t codebooks = codes.dim(0), frames = codes.dim(1);
  ASSERT_EQ(static_cast<int64_t>(codes_frame_major.size()), codebooks * frames);
  for (int64_t j = 0; j < frames; ++j) {
    for (int64_t c = 0; c < codebooks; ++c) {
      EXPECT_EQ(codes_frame_major[j * codebooks + c], codes.i64[c * frames + j])
          << "frame " << j << " codebook " << c;
    }
  }

  const auto hidden = LoadNpy(dir / "step_last_hidden.npy");
  ASSERT_EQ(trace.last_hidden.size(), static_cast<size_t>(hidden.dim(0)));
  for (size_t k = 0; k < trace.last_hidden.size(); ++k) {
    ExpectClose(trace.last_hidden[k], hidden, k, "step_last_hidden");
  }
  const auto text_logits = LoadNpy(dir / "text_step_logits.npy");
  ASSERT_EQ(trace.text_logits.size(), static_cast<size_t>(text_logits.dim(0)));
  for (size_t k = 0; k < trace.text_logits.size(); ++k) {
    ExpectClose(trace.text_logits[k], text_logits, k, "text_step_logits");
  }
  // The reference writes audio logits for every case that produced audio frames.
  if (frames == 0) {
    EXPECT_TRUE(trace.audio_logits.empty()) << "audio logits without audio frames";
    return;
  }
  ASSERT_TRUE(fs::exists(dir / "audio_step_logits.npy"))
      << dir << " has audio frames but no audio_step_logits.npy";
  const auto audio_logits = LoadNpy(dir / "audio_step_logits.npy");  // [frames, cb, vocab]
  ASSERT_EQ(trace.audio_logits.size(), static_cast<size_t>(audio_logits.dim(0)));
  ASSERT_EQ(audio_logits.dim(1), codebooks);
  for (size_t f = 0; f < trace.audio_logits.size(); ++f) {
    ASSERT_EQ(static_cast<int64_t>(trace.audio_logits[f].size()), codebooks) << "frame " << f;
    for (size_t c = 0; c < trace.audio_logits[f].size(); ++c) {
      ASSERT_EQ(static_cast<int64_t>(trace.audio_logits[f][c].size()), audio_logits.dim(2))
          << "frame " << f << " codebook " << c;
      ExpectClose(trace.audio_logits[f][c], audio_logits, f * static_cast<size_t>(codebooks) + c,
                  "audio_step_logits");
    }
  }
}

// One case, named by EDDY_E2E_CASE (CTest sets it per registered case).
TEST(E2eGolden, Case) {
  const char* name = std::getenv("EDDY_E2E_CASE");
  ASSERT_NE(name, nullptr) << "EDDY_E2E_CASE not set";
  RunCase(name);
}

// Every case directory the golden set has, whatever their names.
TEST(E2eGolden, AllCases) {
  const fs::path root = test::GoldenDir() / "model" / "outputs" / "f_e2e";
  ASSERT_TRUE(fs::is_directory(root)) << root;
  int cases = 0;
  for (const auto& entry : fs::directory_iterator(root)) {
    if (!entry.is_directory()) continue;
    RunCase(entry.path().filename().string());
    ++cases;
  }
  EXPECT_GT(cases, 0);
}

}  // namespace
}  // namespace eddy

namespace eddy {
namespace {

struct DraftedRun {
  std::string outputs;  // "T<id> A<code>.. " in order
  std::vector<int> text_ids;
  int64_t kept = 0;
};

DraftedRun RunDrafted(const std::shared_ptr<const AudioModel>& model, const PromptInputs& prompt,
                      int max_new_tokens, const std::vector<int>& draft) {
  ModelBackend backend(model, GenerationSampling{});
  backend.Begin(prompt);
  GenerationLimits limits;
  limits.max_new_tokens = max_new_tokens;
  DraftedRun run;
  GenerateSequential(
      backend, limits, {},
      [&](const GenerationOutput& o) {
        if (o.kind == OutputKind::kText) {
          run.outputs += 'T';
          run.outputs += std::to_string(o.text_id);
          run.outputs += ' ';
          run.text_ids.push_back(o.text_id);
        } else {
          run.outputs += "A";
          for (int c : o.codes) run.outputs += std::to_string(c) + ",";
          run.outputs += " ";
        }
      },
      draft);
  run.kept = backend.draft_tokens_kept();
  return run;
}

// Greedy decoding with a draft is greedy decoding: whatever the draft (right, partly right,
// wrong, too long), the outputs of every sequential golden case are those of the undrafted run
// with block-quantized weights, and a right draft is kept whole.
TEST(E2eGolden, DraftedDecodeIsGreedyDecode) {
  const fs::path root = test::GoldenDir() / "model" / "outputs" / "f_e2e";
  int cases = 0;
  for (const std::string format : {"q8", "q4"}) {
    AudioModelOptions options;
    options.weight_format = format;
    const auto model = AudioModel::Load(test::GoldenModelDir(), options);
    const int vocab = model->backbone().vocab_size();
    for (const auto& entry : fs::directory_iterator(root)) {
      const std::string name = entry.path().filename().string();
      if (!entry.is_directory() || name.find("sequential") == std::string::npos) continue;
      SCOPED_TRACE(format + " " + name);
      const PromptInputs prompt = test::LoadGoldenPrompt(entry.path());
      const int max_new = 24;
      const DraftedRun plain = RunDrafted(model, prompt, max_new, {});
      ASSERT_FALSE(plain.text_ids.empty());
      const std::vector<int>& ids = plain.text_ids;
      const int other = (ids[0] + 1) % vocab;
      std::vector<int> off_in_middle = ids;
      off_in_middle[off_in_middle.size() / 2] =
          (off_in_middle[off_in_middle.size() / 2] + 3) % vocab;
      std::vector<int> too_long = ids;
      too_long.resize(ids.size() + 40, 5);
      std::vector<int> prefix_then_wrong(ids.begin(), ids.begin() + (ids.size() + 1) / 2);
      prefix_then_wrong.push_back(other);
      for (const std::vector<int>& draft :
           {ids, off_in_middle, too_long, prefix_then_wrong, std::vector<int>{other}}) {
        const DraftedRun drafted = RunDrafted(model, prompt, max_new, draft);
        EXPECT_EQ(drafted.outputs, plain.outputs) << "draft of " << draft.size();
      }
      // The whole text up to a stop or switch to audio is kept from a right draft.
      size_t usable = 0;
      while (usable < ids.size()) {
        const int id = ids[usable++];
        if (id == GenerationTokens{}.im_end || id == GenerationTokens{}.audio_start) break;
      }
      EXPECT_EQ(RunDrafted(model, prompt, max_new, ids).kept, static_cast<int64_t>(usable));
      EXPECT_EQ(RunDrafted(model, prompt, max_new, {other}).kept, 0);
      ++cases;
    }
  }
  EXPECT_GT(cases, 0);
  // With float32 weights the rows of a batch round differently from single steps, so drafts are
  // not verified (outputs stay exact).
  const std::string any = fs::directory_iterator(root)->path().string();
  const auto f32 = Model();
  const PromptInputs prompt = test::LoadGoldenPrompt(any);
  const DraftedRun plain = RunDrafted(f32, prompt, 8, {});
  const DraftedRun drafted = RunDrafted(f32, prompt, 8, plain.text_ids);
  EXPECT_EQ(drafted.outputs, plain.outputs);
  EXPECT_EQ(drafted.kept, 0);
}

}  // namespace
}  // namespace eddy
