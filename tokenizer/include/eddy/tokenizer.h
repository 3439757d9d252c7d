// Byte-level BPE tokenizer read from a Hugging Face tokenizer.json, reproducing the `tokenizers`
// library for the formats LFM2 uses: added/special tokens matched verbatim before anything else,
// a Split(regex) + ByteLevel pre-tokenizer (regex run by PCRE2 with Unicode properties), BPE merges
// by rank with ignore_merges, a TemplateProcessing post-processor and the ByteLevel decoder.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace eddy {

class TokenizerError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Tokenizer {
 public:
  // Throws TokenizerError naming the file and what is wrong.
  static Tokenizer Load(const std::filesystem::path& tokenizer_json);
  static Tokenizer Parse(const std::string& json_text, const std::string& origin);

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  // Text to ids. add_special_tokens applies the post-processor template (e.g. a BOS); the
  // reference's prompts use false. Invalid UTF-8 bytes are read as U+FFFD.
  std::vector<int32_t> Encode(std::string_view text, bool add_special_tokens = false) const;
  // Ids to text; invalid UTF-8 in the result is rendered as U+FFFD like the reference.
  std::string Decode(const std::vector<int32_t>& ids, bool skip_special_tokens = false) const;
  // The raw bytes a token stands for (special tokens: their content).
  std::string TokenBytes(int32_t id) const;

  int32_t vocab_size() const;  // one past the largest id
  bool IsSpecial(int32_t id) const;
  // Id of a token string (byte-level form, or an added token's content); -1 when unknown.
  int32_t TokenId(std::string_view token) const;
  // Like TokenId but throws TokenizerError naming the token.
  int32_t RequireTokenId(std::string_view token) const;

 private:
  struct Impl;
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Replaces every invalid UTF-8 sequence by U+FFFD (maximal subparts, as Python and Rust do).
std::string SanitizeUtf8(std::string_view bytes);

// Turns ids produced one at a time into text pieces that never split a UTF-8 sequence: an
// incomplete multi-byte tail is held back until it completes. Flush() emits what is left (an
// unfinished tail as U+FFFD).
class StreamingDetokenizer {
 public:
  explicit StreamingDetokenizer(const Tokenizer& tokenizer, bool skip_special_tokens = false)
      : tokenizer_(&tokenizer), skip_special_(skip_special_tokens) {}
  std::string Push(int32_t id);
  std::string Flush();
  void reset() { pending_.clear(); }

 private:
  const Tokenizer* tokenizer_;
  bool skip_special_;
  std::string pending_;
};

}  // namespace eddy
