#include "eddy/tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <array>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <unordered_map>

namespace eddy {

using nlohmann::json;

namespace {

void AppendUtf8(uint32_t cp, std::string& out) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// What a lead byte announces: the sequence length and the allowed range of the second byte
// (narrower after E0, ED, F0, F4 to exclude overlongs and surrogates). len 0 = not a lead byte.
struct LeadByte {
  size_t len = 0;
  unsigned char lo = 0x80, hi = 0xBF;
};

LeadByte ClassifyLead(unsigned char c) {
  LeadByte l;
  if (c < 0x80) {
    l.len = 1;
  } else if (c >= 0xC2 && c <= 0xDF) {
    l.len = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    l.len = 3;
    if (c == 0xE0) l.lo = 0xA0;
    if (c == 0xED) l.hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    l.len = 4;
    if (c == 0xF0) l.lo = 0x90;
    if (c == 0xF4) l.hi = 0x8F;
  }
  return l;
}

// Number of bytes from s[i] that continue the sequence its lead byte announces (at least 1).
size_t MatchingPrefix(std::string_view s, size_t i, const LeadByte& lead) {
  size_t k = 1;
  for (; k < lead.len && i + k < s.size(); ++k) {
    const unsigned char cc = static_cast<unsigned char>(s[i + k]);
    if (cc < (k == 1 ? lead.lo : 0x80) || cc > (k == 1 ? lead.hi : 0xBF)) break;
  }
  return k;
}

// Length of the valid UTF-8 sequence at s[i], or 0 when the bytes there are not one.
// `incomplete_prefix` is set when they are a valid start cut short by the end of the input.
size_t ValidSequenceLength(std::string_view s, size_t i, bool* incomplete_prefix = nullptr) {
  const LeadByte lead = ClassifyLead(static_cast<unsigned char>(s[i]));
  if (incomplete_prefix) *incomplete_prefix = false;
  if (lead.len == 0) return 0;
  const size_t k = MatchingPrefix(s, i, lead);
  if (k == lead.len) return k;
  if (incomplete_prefix) *incomplete_prefix = i + k == s.size();
  return 0;
}

// Bytes of a maximal invalid subpart at i (at least 1), which the Unicode "substitution of
// maximal subparts" practice (Python, Rust) replaces with one U+FFFD.
size_t InvalidSubpartLength(std::string_view s, size_t i) {
  const LeadByte lead = ClassifyLead(static_cast<unsigned char>(s[i]));
  return lead.len == 0 ? 1 : MatchingPrefix(s, i, lead);
}

// GPT-2's reversible byte <-> printable code point alphabet.
struct ByteAlphabet {
  std::array<std::string, 256> byte_to_utf8;
  std::unordered_map<uint32_t, uint8_t> cp_to_byte;
  ByteAlphabet() {
    uint32_t extra = 0;
    for (uint32_t b = 0; b < 256; ++b) {
      const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
      const uint32_t cp = printable ? b : 256 + extra++;
      AppendUtf8(cp, byte_to_utf8[b]);
      cp_to_byte[cp] = static_cast<uint8_t>(b);
    }
  }
};

const ByteAlphabet& Alphabet() {
  static const ByteAlphabet alphabet;
  return alphabet;
}

// Decodes one code point of valid UTF-8 at s[i]; advances i.
uint32_t NextCodePoint(std::string_view s, size_t& i) {
  const unsigned char c = static_cast<unsigned char>(s[i]);
  size_t len = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
  uint32_t cp = len == 1 ? c : len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
  for (size_t k = 1; k < len; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
  i += len;
  return cp;
}

struct AddedToken {
  int32_t id;
  std::string content;
  bool special, lstrip, rstrip, single_word;
};

struct Regex {
  pcre2_code* code = nullptr;
  ~Regex() {
    if (code) pcre2_code_free(code);
  }
};

}  // namespace

std::string SanitizeUtf8(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  for (size_t i = 0; i < bytes.size();) {
    const size_t len = ValidSequenceLength(bytes, i);
    if (len > 0) {
      out.append(bytes.substr(i, len));
      i += len;
    } else {
      out.append("\xEF\xBF\xBD");
      i += InvalidSubpartLength(bytes, i);
    }
  }
  return out;
}

struct Tokenizer::Impl {
  std::string origin;
  std::unordered_map<std::string, int32_t> vocab;
  std::vector<std::string> id_to_token;  // byte-level strings or added contents
  std::vector<char> is_added, is_special;
  std::unordered_map<uint64_t, std::pair<int32_t, int32_t>> merges;  // (a,b) -> (rank, merged)
  bool ignore_merges = false;
  std::vector<AddedToken> added;
  std::array<std::vector<size_t>, 256> added_by_first_byte;
  std::vector<std::shared_ptr<Regex>> split_regexes;  // Split(Isolated) steps, in order
  bool byte_level = false, byte_level_regex = false, add_prefix_space = false;
  std::vector<std::vector<int32_t>> template_items;  // special ids; empty vector = the sequence
  mutable std::mutex cache_mutex;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache;

  [[noreturn]] void Fail(const std::string& why) const {
    throw TokenizerError(origin + ": " + why);
  }

  std::shared_ptr<Regex> Compile(const std::string& pattern) const {
    int err = 0;
    PCRE2_SIZE offset = 0;
    auto re = std::make_shared<Regex>();
    re->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                             PCRE2_UTF | PCRE2_UCP, &err, &offset, nullptr);
    if (re->code == nullptr) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(err, msg, sizeof(msg));
      Fail("pre-tokenizer regex does not compile at offset " + std::to_string(offset) + ": " +
           reinterpret_cast<const char*>(msg));
    }
    pcre2_jit_compile(re->code, PCRE2_JIT_COMPLETE);  // falls back to the interpreter if absent
    return re;
  }

  void ParsePreTokenizer(const json& p) {
    if (p.is_null()) return;
    const std::string type = p.value("type", "");
    if (type == "Sequence") {
      for (const auto& step : p.at("pretokenizers")) ParsePreTokenizer(step);
    } else if (type == "Split") {
      if (p.value("behavior", "") != "Isolated" || p.value("invert", false)) {
        Fail("only Split pre-tokenizers with behavior Isolated and invert false are supported");
      }
      const json& pattern = p.at("pattern");
      if (pattern.contains("Regex")) {
        split_regexes.push_back(Compile(pattern["Regex"].get<std::string>()));
      } else {
        Fail("only Split patterns given as Regex are supported");
      }
    } else if (type == "ByteLevel") {
      byte_level = true;
      add_prefix_space = p.value("add_prefix_space", false);
      if (p.value("use_regex", true)) {
        byte_level_regex = true;
        split_regexes.push_back(Compile(
            R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)"));
      }
    } else {
      Fail("unsupported pre-tokenizer type '" + type + "'");
    }
  }

  void ParseTemplate(const json& p) {
    if (p.is_null()) return;
    if (p.value("type", "") != "TemplateProcessing") {
      if (p.value("type", "") == "ByteLevel") return;  // offsets only
      Fail("unsupported post-processor type '" + p.value("type", "") + "'");
    }
    const json& specials = p.value("special_tokens", json::object());
    for (const auto& item : p.at("single")) {
      if (item.contains("Sequence")) {
        template_items.push_back({});
      } else if (item.contains("SpecialToken")) {
        const std::string name = item["SpecialToken"].at("id").get<std::string>();
        if (!specials.contains(name)) Fail("post-processor names unknown token '" + name + "'");
        template_items.push_back(specials[name].at("ids").get<std::vector<int32_t>>());
      }
    }
  }

  // BPE of one pre-token in byte-level form.
  void Bpe(const std::string& word, std::vector<int32_t>& out) const {
    if (ignore_merges) {
      auto it = vocab.find(word);
      if (it != vocab.end()) {
        out.push_back(it->second);
        return;
      }
    }
    {
      std::lock_guard<std::mutex> lock(cache_mutex);
      auto it = cache.find(word);
      if (it != cache.end()) {
        out.insert(out.end(), it->second.begin(), it->second.end());
        return;
      }
    }
    std::vector<int32_t> symbols;
    for (size_t i = 0; i < word.size();) {
      const size_t start = i;
      NextCodePoint(word, i);
      auto it = vocab.find(word.substr(start, i - start));
      if (it == vocab.end()) Fail("byte symbol missing from the vocabulary");
      symbols.push_back(it->second);
    }
    while (symbols.size() > 1) {
      int32_t best_rank = INT32_MAX, best_id = -1;
      size_t best_pos = 0;
      for (size_t i = 0; i + 1 < symbols.size(); ++i) {
        auto it = merges.find((static_cast<uint64_t>(symbols[i]) << 32) |
                              static_cast<uint32_t>(symbols[i + 1]));
        if (it != merges.end() && it->second.first < best_rank) {
          best_rank = it->second.first, best_id = it->second.second, best_pos = i;
        }
      }
      if (best_id < 0) break;
      symbols[best_pos] = best_id;
      symbols.erase(symbols.begin() + static_cast<std::ptrdiff_t>(best_pos) + 1);
    }
    out.insert(out.end(), symbols.begin(), symbols.end());
    std::lock_guard<std::mutex> lock(cache_mutex);
    if (cache.size() > 100000) cache.clear();
    cache.emplace(word, symbols);
  }

  // Pieces of a text segment after the Split steps (Isolated: matches and gaps both kept).
  std::vector<std::string_view> Split(std::string_view text) const {
    std::vector<std::string_view> pieces{text};
    for (const auto& re : split_regexes) {
      std::vector<std::string_view> next;
      pcre2_match_data* md = pcre2_match_data_create_from_pattern(re->code, nullptr);
      for (std::string_view piece : pieces) {
        size_t pos = 0;
        while (pos < piece.size()) {
          const int rc = pcre2_match(re->code, reinterpret_cast<PCRE2_SPTR>(piece.data()),
                                     piece.size(), pos, PCRE2_NO_UTF_CHECK, md, nullptr);
          // The text was made valid UTF-8 by Encode(); checking it again on every call would
          // rescan the rest of the subject each time (quadratic on long inputs).
          if (rc < 0) break;
          const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
          size_t start = ov[0], end = ov[1];
          if (start > pos) next.push_back(piece.substr(pos, start - pos));
          if (end == start) {  // empty match: step one code point
            size_t i = start;
            NextCodePoint(piece, i);
            next.push_back(piece.substr(start, i - start));
            end = i;
          } else {
            next.push_back(piece.substr(start, end - start));
          }
          pos = end;
        }
        if (pos < piece.size()) next.push_back(piece.substr(pos));
      }
      pcre2_match_data_free(md);
      pieces = std::move(next);
    }
    return pieces;
  }

  void EncodeSegment(std::string_view segment, std::vector<int32_t>& out) const {
    if (segment.empty()) return;
    std::string prefixed;
    if (add_prefix_space && segment.front() != ' ') {
      prefixed = " " + std::string(segment);
      segment = prefixed;
    }
    const auto& alphabet = Alphabet();
    std::string word;
    for (std::string_view piece : Split(segment)) {
      word.clear();
      if (byte_level) {
        for (unsigned char b : piece) word += alphabet.byte_to_utf8[b];
      } else {
        word.assign(piece);
      }
      Bpe(word, out);
    }
  }

  // Longest added token starting at text[i], or nullptr.
  const AddedToken* MatchAdded(std::string_view text, size_t i) const {
    const AddedToken* best = nullptr;
    for (size_t k : added_by_first_byte[static_cast<unsigned char>(text[i])]) {
      const AddedToken& t = added[k];
      if (text.compare(i, t.content.size(), t.content) == 0 &&
          (!best || t.content.size() > best->content.size())) {
        best = &t;
      }
    }
    return best;
  }

  std::vector<int32_t> Encode(std::string_view raw) const {
    const std::string sanitized = SanitizeUtf8(raw);
    const std::string_view text = sanitized;
    std::vector<int32_t> out;
    size_t segment_start = 0;
    for (size_t i = 0; i < text.size();) {
      const AddedToken* t = added.empty() ? nullptr : MatchAdded(text, i);
      if (!t) {
        ++i;
        continue;
      }
      size_t seg_end = i;
      if (t->lstrip) {
        while (seg_end > segment_start &&
               std::isspace(static_cast<unsigned char>(text[seg_end - 1])))
          --seg_end;
      }
      EncodeSegment(text.substr(segment_start, seg_end - segment_start), out);
      out.push_back(t->id);
      i += t->content.size();
      if (t->rstrip) {
        while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
      }
      segment_start = i;
    }
    EncodeSegment(text.substr(segment_start), out);
    return out;
  }
};

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Tokenizer Tokenizer::Load(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw TokenizerError(path.string() + ": cannot open tokenizer file");
  std::ostringstream text;
  text << in.rdbuf();
  return Parse(text.str(), path.string());
}

Tokenizer Tokenizer::Parse(const std::string& json_text, const std::string& origin) {
  auto impl = std::make_unique<Impl>();
  impl->origin = origin;
  json root;
  try {
    root = json::parse(json_text);
  } catch (const json::exception& e) {
    impl->Fail(std::string("invalid JSON: ") + e.what());
  }
  try {
    const json& model = root.at("model");
    if (model.value("type", "BPE") != "BPE") {
      impl->Fail("unsupported model type '" + model.value("type", "") + "' (only BPE)");
    }
    if (!root.value("normalizer", json()).is_null()) {
      impl->Fail("normalizers are not supported (LFM2's tokenizer has none)");
    }
    impl->ignore_merges = model.value("ignore_merges", false);
    int32_t max_id = -1;
    for (auto it = model.at("vocab").begin(); it != model.at("vocab").end(); ++it) {
      const int32_t id = it.value().get<int32_t>();
      if (id < 0) impl->Fail("negative token id in the vocabulary");
      impl->vocab[it.key()] = id;
      max_id = std::max(max_id, id);
    }
    for (const auto& t : root.value("added_tokens", json::array())) {
      max_id = std::max(max_id, t.at("id").get<int32_t>());
    }
    impl->id_to_token.resize(max_id + 1);
    impl->is_added.assign(max_id + 1, 0);
    impl->is_special.assign(max_id + 1, 0);
    for (const auto& [token, id] : impl->vocab) impl->id_to_token[id] = token;
    int32_t rank = 0;
    for (const auto& m : model.at("merges")) {
      std::string a, b;
      if (m.is_string()) {
        const std::string s = m.get<std::string>();
        const size_t space = s.find(' ', 1);
        if (space == std::string::npos) impl->Fail("merge '" + s + "' is not 'a b'");
        a = s.substr(0, space), b = s.substr(space + 1);
      } else {
        a = m.at(0).get<std::string>(), b = m.at(1).get<std::string>();
      }
      const auto ia = impl->vocab.find(a), ib = impl->vocab.find(b), im = impl->vocab.find(a + b);
      if (ia == impl->vocab.end() || ib == impl->vocab.end() || im == impl->vocab.end()) {
        impl->Fail("merge '" + a + " " + b + "' uses tokens missing from the vocabulary");
      }
      const uint64_t key =
          (static_cast<uint64_t>(ia->second) << 32) | static_cast<uint32_t>(ib->second);
      impl->merges.emplace(key, std::make_pair(rank++, im->second));
    }
    for (const auto& t : root.value("added_tokens", json::array())) {
      AddedToken a{t.at("id").get<int32_t>(), t.at("content").get<std::string>(),
                   t.value("special", false), t.value("lstrip", false),
                   t.value("rstrip", false),  t.value("single_word", false)};
      if (a.content.empty()) impl->Fail("an added token has empty content");
      impl->id_to_token[a.id] = a.content;
      impl->is_added[a.id] = 1;
      impl->is_special[a.id] = a.special;
      impl->added_by_first_byte[static_cast<unsigned char>(a.content[0])].push_back(
          impl->added.size());
      impl->added.push_back(std::move(a));
    }
    impl->ParsePreTokenizer(root.value("pre_tokenizer", json()));
    impl->ParseTemplate(root.value("post_processor", json()));
    const json decoder = root.value("decoder", json());
    if (!decoder.is_null() && decoder.value("type", "") != "ByteLevel") {
      impl->Fail("unsupported decoder type '" + decoder.value("type", "") + "'");
    }
  } catch (const json::exception& e) {
    impl->Fail(std::string("malformed tokenizer: ") + e.what());
  }
  return Tokenizer(std::move(impl));
}

std::vector<int32_t> Tokenizer::Encode(std::string_view text, bool add_special_tokens) const {
  std::vector<int32_t> ids = impl_->Encode(text);
  if (!add_special_tokens || impl_->template_items.empty()) return ids;
  std::vector<int32_t> out;
  for (const auto& item : impl_->template_items) {
    if (item.empty()) {
      out.insert(out.end(), ids.begin(), ids.end());
    } else {
      out.insert(out.end(), item.begin(), item.end());
    }
  }
  return out;
}

std::string Tokenizer::TokenBytes(int32_t id) const {
  if (id < 0 || id >= vocab_size())
    throw TokenizerError(impl_->origin + ": token id " + std::to_string(id) + " out of range");
  const std::string& token = impl_->id_to_token[id];
  if (!impl_->byte_level) return token;
  // The ByteLevel decoder maps every alphabet character back to its byte; others stay as UTF-8.
  const auto& alphabet = Alphabet();
  std::string out;
  for (size_t i = 0; i < token.size();) {
    const size_t start = i;
    const uint32_t cp = NextCodePoint(token, i);
    auto it = alphabet.cp_to_byte.find(cp);
    if (it != alphabet.cp_to_byte.end()) {
      out.push_back(static_cast<char>(it->second));
    } else {
      out.append(token, start, i - start);
    }
  }
  return out;
}

std::string Tokenizer::Decode(const std::vector<int32_t>& ids, bool skip_special_tokens) const {
  std::string bytes;
  for (int32_t id : ids) {
    if (skip_special_tokens && IsSpecial(id)) continue;
    bytes += TokenBytes(id);
  }
  return SanitizeUtf8(bytes);
}

int32_t Tokenizer::vocab_size() const {
  return static_cast<int32_t>(impl_->id_to_token.size());
}

bool Tokenizer::IsSpecial(int32_t id) const {
  return id >= 0 && id < vocab_size() && impl_->is_special[id];
}

int32_t Tokenizer::TokenId(std::string_view token) const {
  for (const auto& a : impl_->added) {
    if (a.content == token) return a.id;
  }
  auto it = impl_->vocab.find(std::string(token));
  return it == impl_->vocab.end() ? -1 : it->second;
}

int32_t Tokenizer::RequireTokenId(std::string_view token) const {
  const int32_t id = TokenId(token);
  if (id < 0)
    throw TokenizerError(impl_->origin + ": token '" + std::string(token) + "' is unknown");
  return id;
}

std::string StreamingDetokenizer::Push(int32_t id) {
  if (skip_special_ && tokenizer_->IsSpecial(id)) return {};
  pending_ += tokenizer_->TokenBytes(id);
  // Emit everything up to an unfinished sequence at the very end; invalid bytes become U+FFFD.
  size_t keep_from = pending_.size();
  for (size_t i = 0; i < pending_.size();) {
    bool incomplete = false;
    const size_t len = ValidSequenceLength(pending_, i, &incomplete);
    if (len > 0) {
      i += len;
    } else if (incomplete) {
      keep_from = i;
      break;
    } else {
      i += InvalidSubpartLength(pending_, i);
    }
  }
  std::string out = SanitizeUtf8(std::string_view(pending_).substr(0, keep_from));
  pending_.erase(0, keep_from);
  return out;
}

std::string StreamingDetokenizer::Flush() {
  std::string out = SanitizeUtf8(pending_);
  pending_.clear();
  return out;
}

}  // namespace eddy
