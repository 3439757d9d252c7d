// Tokenizer encode throughput on mixed-language text (the golden cases, repeated to ~4 MB).
// Usage: bench_tokenizer [tokenizer.json] [cases.jsonl]
#include <benchmark/benchmark.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "eddy/tokenizer.h"

namespace {

std::string g_tokenizer = "tests/data/golden/tokenizer/tokenizer.json";
std::string g_cases = "tests/data/golden/tokenizer/cases.jsonl";

std::string MixedText() {
  std::ifstream in(g_cases);
  std::string line, text;
  while (std::getline(in, line)) {
    if (!line.empty()) text += nlohmann::json::parse(line).at("text").get<std::string>() + "\n";
  }
  std::string big;
  while (!text.empty() && big.size() < (4u << 20)) big += text;
  return big;
}

void BM_Encode(benchmark::State& state) {
  const auto tok = eddy::Tokenizer::Load(g_tokenizer);
  const std::string text = MixedText();
  for (auto _ : state) benchmark::DoNotOptimize(tok.Encode(text));
  state.SetBytesProcessed(static_cast<int64_t>(text.size()) * state.iterations());
}
BENCHMARK(BM_Encode)->Unit(benchmark::kMillisecond);

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (argc > 1) g_tokenizer = argv[1];
  if (argc > 2) g_cases = argv[2];
  benchmark::RunSpecifiedBenchmarks();
}
