// Unit tests of the LFM2 backbone's cache semantics and loading, on the golden checkpoint's
// weights (the expected values are the model's own one-shot results, not golden data).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <thread>
#include <vector>

#include "eddy/config.h"
#include "eddy/lfm2.h"
#include "eddy/model_error.h"
#include "eddy/safetensors.h"
#include "eddy/safetensors_writer.h"
#include "golden.h"
#include "quant.h"

namespace eddy {
namespace {

namespace fs = std::filesystem;

struct Fixture {
  AudioModelConfig config;
  std::shared_ptr<const SafeTensors> st;
  std::shared_ptr<const Lfm2Model> lfm;
};

const Fixture& Model() {
  static const Fixture f = [] {
    Fixture x;
    x.config = AudioModelConfig::Load(test::GoldenModelDir() / "config.json");
    x.st = std::make_shared<const SafeTensors>(
        SafeTensors::Open(test::GoldenModelDir() / "model.safetensors"));
    x.lfm = Lfm2Model::Load(x.st, x.config.lfm);
    return x;
  }();
  return f;
}

std::vector<int> PromptIds(int n) {
  std::vector<int> ids;
  const int vocab = Model().lfm->vocab_size();
  for (int i = 0; i < n; ++i) ids.push_back((i * 37 + 11) % vocab);
  return ids;
}

double MaxAbsDiff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double m = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    m = std::max(m, static_cast<double>(std::fabs(a[i] - b[i])));
  }
  return m;
}

TEST(Backbone, ChunkedPrefillEqualsOneShot) {
  const Lfm2Model& m = *Model().lfm;
  const int n = 23, d = m.hidden_size();
  const std::vector<float> emb = m.EmbedText(PromptIds(n));
  Lfm2Cache one = m.NewCache();
  const std::vector<float> ref = m.Forward(emb, one);
  for (const std::vector<int>& chunks :
       {std::vector<int>{1, 22}, {5, 5, 5, 8}, std::vector<int>(23, 1), {2, 1, 20}}) {
    Lfm2Cache cache = m.NewCache();
    std::vector<float> got(emb.size());
    int at = 0;
    for (int c : chunks) {
      m.Forward(emb.data() + at * d, c, cache, got.data() + at * d);
      at += c;
    }
    ASSERT_EQ(at, n);
    EXPECT_EQ(cache.position(), n);
    EXPECT_LE(MaxAbsDiff(got, ref), 1e-5) << "chunks of " << chunks.size();
  }
}

TEST(Backbone, SnapshotRestoreContinuesIdentically) {
  const Lfm2Model& m = *Model().lfm;
  const int d = m.hidden_size();
  Lfm2Cache cache = m.NewCache();
  m.Forward(m.EmbedText(PromptIds(9)), cache);
  const Lfm2Cache prefix = cache.Snapshot();
  const std::vector<float> a = m.Forward(m.EmbedText({42, 43, 44}), cache);
  cache.Restore(prefix);
  EXPECT_EQ(cache.position(), 9);
  const std::vector<float> b = m.Forward(m.EmbedText({42, 43, 44}), cache);
  EXPECT_EQ(a, b);
  Lfm2Cache other = prefix;  // copies are independent
  const std::vector<float> c = m.Forward(m.EmbedText({7}), other);
  EXPECT_EQ(prefix.position(), 9);
  EXPECT_EQ(static_cast<int>(c.size()), d);
}

TEST(Backbone, InterleavedCachesMatchSeparateRuns) {
  const Lfm2Model& m = *Model().lfm;
  const std::vector<int> p = PromptIds(12);
  const std::vector<int> q = {5, 99, 3, 17, 250, 8};
  auto run_alone = [&](const std::vector<int>& ids) {
    Lfm2Cache c = m.NewCache();
    std::vector<float> all;
    for (int id : ids) {
      const std::vector<float> h = m.Forward(m.EmbedText({id}), c);
      all.insert(all.end(), h.begin(), h.end());
    }
    return all;
  };
  const std::vector<float> ref_p = run_alone(p), ref_q = run_alone(q);
  Lfm2Cache cp = m.NewCache(), cq = m.NewCache();
  std::vector<float> got_p, got_q;
  for (size_t i = 0; i < p.size(); ++i) {
    const std::vector<float> hp = m.Forward(m.EmbedText({p[i]}), cp);
    got_p.insert(got_p.end(), hp.begin(), hp.end());
    if (i < q.size()) {
      const std::vector<float> hq = m.Forward(m.EmbedText({q[i]}), cq);
      got_q.insert(got_q.end(), hq.begin(), hq.end());
    }
  }
  EXPECT_EQ(got_p, ref_p);
  EXPECT_EQ(got_q, ref_q);
}

TEST(Backbone, ConcurrentStreamsOnOneModel) {
  const Lfm2Model& m = *Model().lfm;
  auto run = [&](int salt) {
    Lfm2Cache c = m.NewCache();
    std::vector<float> all;
    for (int i = 0; i < 20; ++i) {
      const std::vector<float> h = m.Forward(m.EmbedText({(i * 13 + salt) % m.vocab_size()}), c);
      all.insert(all.end(), h.begin(), h.end());
    }
    return all;
  };
  const std::vector<float> ref_a = run(3), ref_b = run(400);
  std::vector<float> got_a, got_b;
  std::thread ta([&] { got_a = run(3); });
  std::thread tb([&] { got_b = run(400); });
  ta.join();
  tb.join();
  EXPECT_EQ(got_a, ref_a);
  EXPECT_EQ(got_b, ref_b);
}

TEST(Backbone, ResetStartsOver) {
  const Lfm2Model& m = *Model().lfm;
  Lfm2Cache c = m.NewCache();
  const std::vector<float> a = m.Forward(m.EmbedText({1, 2, 3}), c);
  c.Reset();
  EXPECT_EQ(c.position(), 0);
  EXPECT_EQ(m.Forward(m.EmbedText({1, 2, 3}), c), a);
}

TEST(Backbone, OutOfRangeTokenIsAnError) {
  const Lfm2Model& m = *Model().lfm;
  EXPECT_THROW(m.EmbedText({m.vocab_size()}), ModelError);
  EXPECT_THROW(m.EmbedText({-1}), ModelError);
}

TEST(Backbone, WrongTensorShapeNamesTheTensor) {
  const Fixture& f = Model();
  LfmConfig wrong = f.config.lfm;
  wrong.intermediate_size += 3 * wrong.block_multiple_of;  // a different ff width
  try {
    Lfm2Model::Load(f.st, wrong);
    FAIL() << "expected ModelError";
  } catch (const ModelError& e) {
    EXPECT_NE(std::string(e.what()).find("lfm.layers.0.feed_forward.w1.weight"), std::string::npos)
        << e.what();
  }
}

TEST(Backbone, Bf16WeightsAgreeToBf16Precision) {
  const Fixture& f = Model();
  const fs::path dir = fs::temp_directory_path() / ("eddy_bf16_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const fs::path file = dir / "model.safetensors";
  ConvertSafeTensors(*f.st, file, DType::kBF16);
  auto st16 = std::make_shared<const SafeTensors>(SafeTensors::Open(file));
  EXPECT_EQ(st16->Get("lfm.embed_tokens.weight").dtype, DType::kBF16);
  auto lfm16 = Lfm2Model::Load(st16, f.config.lfm);
  const std::vector<int> ids = PromptIds(10);
  Lfm2Cache c32 = f.lfm->NewCache(), c16 = lfm16->NewCache();
  const std::vector<float> h32 = f.lfm->Forward(f.lfm->EmbedText(ids), c32);
  const std::vector<float> h16 = lfm16->Forward(lfm16->EmbedText(ids), c16);
  const int d = f.lfm->hidden_size();
  const std::vector<float> l32 = f.lfm->TextLogits(h32.data() + (ids.size() - 1) * d);
  const std::vector<float> l16 = lfm16->TextLogits(h16.data() + (ids.size() - 1) * d);
  double max_ref = 0;
  for (float v : l32) max_ref = std::max(max_ref, static_cast<double>(std::fabs(v)));
  const double diff = MaxAbsDiff(l16, l32);
  EXPECT_LE(diff, 0.05 * max_ref);  // bf16 keeps 8 mantissa bits
  EXPECT_GT(diff, 0.0);             // the bf16 path really ran
  fs::remove_all(dir);
}

TEST(Backbone, F16KvCacheAgreesToF16Precision) {
  const Fixture& f = Model();
  Lfm2Options opt;
  opt.kv_cache = "f16";
  auto lfm16 = Lfm2Model::Load(f.st, f.config.lfm, opt);
  const std::vector<int> ids = PromptIds(40);
  Lfm2Cache c32 = f.lfm->NewCache(), c16 = lfm16->NewCache();
  // Prefill, then single steps that read the cache back.
  std::vector<float> h32 = f.lfm->Forward(f.lfm->EmbedText({ids.begin(), ids.end() - 8}), c32);
  std::vector<float> h16 = lfm16->Forward(lfm16->EmbedText({ids.begin(), ids.end() - 8}), c16);
  double max_ref = 0, max_diff = 0;
  for (size_t i = ids.size() - 8; i < ids.size(); ++i) {
    h32 = f.lfm->Forward(f.lfm->EmbedText({ids[i]}), c32);
    h16 = lfm16->Forward(lfm16->EmbedText({ids[i]}), c16);
    for (float v : h32) max_ref = std::max(max_ref, double(std::fabs(v)));
    max_diff = std::max(max_diff, MaxAbsDiff(h16, h32));
  }
  EXPECT_LE(max_diff, 5e-3 * max_ref);  // f16 keeps 11 significant bits
  EXPECT_GT(max_diff, 0.0);             // the f16 cache really ran
  opt.kv_cache = "f8";
  EXPECT_THROW(Lfm2Model::Load(f.st, f.config.lfm, opt), ModelError);
}

TEST(Backbone, Bf16RopeOptionChangesResultsSlightly) {
  const Fixture& f = Model();
  Lfm2Options opt;
  opt.bf16_rope_inv_freq = true;
  auto rounded = Lfm2Model::Load(f.st, f.config.lfm, opt);
  const std::vector<int> ids = PromptIds(30);
  Lfm2Cache a = f.lfm->NewCache(), b = rounded->NewCache();
  const std::vector<float> ha = f.lfm->Forward(f.lfm->EmbedText(ids), a);
  const std::vector<float> hb = rounded->Forward(rounded->EmbedText(ids), b);
  const double diff = MaxAbsDiff(ha, hb);
  EXPECT_GT(diff, 0.0);
  EXPECT_LT(diff, 0.5);
}

}  // namespace
}  // namespace eddy

namespace eddy {
namespace {

std::shared_ptr<const Lfm2Model> LoadAs(const std::string& format) {
  Lfm2Options options;
  options.weight_format = format;
  return Lfm2Model::Load(Model().st, Model().config.lfm, options);
}

// Rows 20.. of a 20 + k position run, computed as one chunk of k or as k single steps.
std::pair<std::vector<float>, std::vector<float>> BatchAndSteps(const Lfm2Model& m, int k) {
  const int d = m.hidden_size();
  const std::vector<float> emb = m.EmbedText(PromptIds(20 + k));
  Lfm2Cache batch = m.NewCache();
  std::vector<float> prefix(static_cast<size_t>(20) * d);
  m.Forward(emb.data(), 20, batch, prefix.data());
  Lfm2Cache steps = batch;
  std::vector<float> a(static_cast<size_t>(k) * d), b(a.size());
  m.Forward(emb.data() + 20 * d, k, batch, a.data());
  for (int t = 0; t < k; ++t) {
    m.Forward(emb.data() + (20 + t) * d, 1, steps, b.data() + static_cast<size_t>(t) * d);
  }
  return {a, b};
}

// Draft verification relies on this: with block-quantized weights a chunk's rows and their text
// logits are bit for bit those of single steps, under every kernel.
TEST(Backbone, QuantizedRowsDoNotDependOnTheBatch) {
  for (const std::string format : {"q8", "q4"}) {
    const auto m = LoadAs(format);
    EXPECT_TRUE(m->rows_independent_of_batch()) << format;
    for (quant::Kernel kernel :
         {quant::Kernel::kPortable, quant::Kernel::kAvx2, quant::Kernel::kAvx512Vnni}) {
      if (!quant::Supported(kernel)) {
        std::fprintf(stderr, "NOTE: kernel %s not supported by this CPU, not checked\n",
                     quant::KernelName(kernel));
        continue;
      }
      quant::ForceKernel(kernel);
      for (int k : {2, 5, 17, 20}) {
        const auto [batch, steps] = BatchAndSteps(*m, k);
        EXPECT_EQ(batch, steps) << format << " " << quant::KernelName(kernel) << " k=" << k;
        const int d = m->hidden_size(), vocab = m->vocab_size();
        std::vector<float> together(static_cast<size_t>(k) * vocab);
        m->TextLogits(batch.data(), k, together.data());
        for (int t = 0; t < k; ++t) {
          const std::vector<float> one = m->TextLogits(batch.data() + static_cast<size_t>(t) * d);
          ASSERT_TRUE(std::equal(one.begin(), one.end(),
                                 together.begin() + static_cast<ptrdiff_t>(t) * vocab))
              << format << " logits row " << t;
        }
      }
    }
    quant::ForceKernel(quant::BestKernel());
  }
  EXPECT_FALSE(LoadAs("f32")->rows_independent_of_batch());
  EXPECT_FALSE(LoadAs("bf16")->rows_independent_of_batch());
}

// Rewinding into a chunk leaves the cache as if only the kept positions had been computed: the
// continuation matches a run that never saw the dropped ones.
TEST(Backbone, RewindDropsTheLaterPositionsOfAChunk) {
  for (const std::string format : {"q8", "f32"}) {
    const auto m = LoadAs(format);
    const int d = m->hidden_size();
    const std::vector<float> emb = m->EmbedText(PromptIds(9));
    const std::vector<float> chunk = m->EmbedText({40, 41, 42, 43, 44, 45});
    const std::vector<float> next = m->EmbedText({77, 78});
    for (int keep : {0, 1, 2, 5, 6}) {
      Lfm2Cache cache = m->NewCache();
      m->Forward(emb, cache);
      Lfm2Cache reference = cache;
      cache.set_rewindable(true);
      m->Forward(chunk, cache);
      m->Rewind(cache, 9 + keep);
      cache.set_rewindable(false);
      EXPECT_EQ(cache.position(), 9 + keep);
      const std::vector<float> got = m->Forward(next, cache);
      for (int t = 0; t < keep; ++t) {
        m->Forward(std::vector<float>(chunk.begin() + t * d, chunk.begin() + (t + 1) * d),
                   reference);
      }
      const std::vector<float> want = m->Forward(next, reference);
      if (format == "q8") {
        EXPECT_EQ(got, want) << "keep " << keep;
      } else {
        EXPECT_LE(MaxAbsDiff(got, want), 1e-5) << "keep " << keep;
      }
    }
  }
}

TEST(Backbone, CancelFlagStopsTheForwardPass) {
  const Lfm2Model& m = *Model().lfm;
  const std::vector<float> prompt = m.EmbedText(PromptIds(7));
  const std::vector<float> next = m.EmbedText({11, 12});
  Lfm2Cache reference = m.NewCache();
  m.Forward(prompt, reference);
  const Lfm2Cache snapshot = reference.Snapshot();
  const std::vector<float> want = m.Forward(next, reference);

  std::atomic<bool> cancel{true};
  Lfm2Cache cache = m.NewCache();
  cache.set_cancel_flag(&cancel);
  EXPECT_THROW(m.Forward(prompt, cache), Cancelled);
  cache.Restore(snapshot);  // keeps the flag
  EXPECT_THROW(m.Forward(next, cache), Cancelled);
  cancel = false;
  cache.Restore(snapshot);
  EXPECT_EQ(m.Forward(next, cache), want);
}

TEST(Backbone, RewindOutsideTheLastChunkIsAnError) {
  const Lfm2Model& m = *Model().lfm;
  Lfm2Cache cache = m.NewCache();
  m.Forward(m.EmbedText(PromptIds(5)), cache);
  EXPECT_THROW(m.Rewind(cache, 3), ModelError);  // not rewindable
  cache.set_rewindable(true);
  m.Forward(m.EmbedText({1, 2, 3}), cache);
  EXPECT_THROW(m.Rewind(cache, 4), ModelError);  // before the chunk
  EXPECT_THROW(m.Rewind(cache, 9), ModelError);  // after the end
  m.Rewind(cache, 6);
  EXPECT_EQ(cache.position(), 6);
}

}  // namespace
}  // namespace eddy
