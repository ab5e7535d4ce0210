// A parser for terms written in Erlang syntax (the subset of Erlang expressions that are
// literal terms), with the printed forms of pids, references and ports.
#include <cctype>
#include <charconv>
#include <cstring>

#include "hypha/term/text.hpp"
#include "syntax.hpp"
#include "utf8.hpp"

namespace hypha {

std::string ParseError::message() const {
  return "at byte " + std::to_string(offset) + ": " + reason;
}

namespace {

struct Failure {
  std::size_t offset;
  std::string reason;
};

constexpr std::size_t kMaxNumberChars = 100000;

bool is_digit(char c) { return c >= '0' && c <= '9'; }
using detail::is_atom_char;
using detail::is_atom_start;

// Bits appended most significant first, as binary construction does.
class BitWriter {
 public:
  void put(const BigInt& value, std::size_t bits) {
    // Two's complement of `value` modulo 2^bits, written big-endian.
    BigInt v = value;
    std::vector<std::uint8_t> mag = v.magnitude_bytes();  // little-endian
    const std::size_t nbytes = (bits + 7) / 8;
    mag.resize(std::max(mag.size(), nbytes), 0);
    if (v.negative()) {  // two's complement over nbytes
      unsigned carry = 1;
      for (std::size_t i = 0; i < nbytes; ++i) {
        const unsigned x = static_cast<std::uint8_t>(~mag[i]) + carry;
        mag[i] = static_cast<std::uint8_t>(x);
        carry = x >> 8;
      }
    }
    for (std::size_t b = bits; b-- > 0;) put_bit((mag[b / 8] >> (b % 8)) & 1);
  }
  void put_byte(std::uint8_t b) {
    if (used_ == 0) { bytes_.push_back(b); return; }
    for (int k = 7; k >= 0; --k) put_bit((b >> k) & 1);
  }
  Term finish() const {
    if (used_ == 0) return Term::binary(std::span<const std::uint8_t>(bytes_));
    return Term::bitstring(bytes_, used_);
  }

 private:
  void put_bit(unsigned bit) {
    if (used_ == 0) bytes_.push_back(0);
    if (bit) bytes_.back() |= static_cast<std::uint8_t>(0x80 >> used_);
    used_ = (used_ + 1) % 8;
  }
  std::vector<std::uint8_t> bytes_;
  unsigned used_ = 0;  // bits used in the last byte; 0 means it is full
};

class Parser {
 public:
  Parser(std::string_view s, const ParseOptions& o) : s_(s), opts_(o) {}

  Term document() {
    Term t = value(0);
    ws();
    if (i_ < s_.size() && s_[i_] == '.') {
      ++i_;
      ws();
    }
    if (i_ != s_.size()) fail(i_, "unexpected text after the term");
    return t;
  }

 private:
  [[noreturn]] void fail(std::size_t at, std::string reason) { throw Failure{at, std::move(reason)}; }

  void ws() {
    while (i_ < s_.size()) {
      const char c = s_[i_];
      if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') { ++i_; continue; }
      if (c == '%') {  // comment to end of line
        while (i_ < s_.size() && s_[i_] != '\n') ++i_;
        continue;
      }
      break;
    }
  }
  bool at_end() const { return i_ >= s_.size(); }
  char peek(std::size_t k = 0) const { return i_ + k < s_.size() ? s_[i_ + k] : '\0'; }
  bool starts(std::string_view w) const { return s_.substr(i_, w.size()) == w; }
  void expect(char c) {
    ws();
    if (peek() != c) fail(i_, std::string("expected '") + c + "'" + found());
    ++i_;
  }
  std::string found() const {
    if (at_end()) return ", found the end of the text";
    return std::string(", found '") + s_[i_] + "'";
  }
  char32_t next_char() {
    char32_t c;
    const std::size_t at = i_;
    if (!detail::utf8_next(s_, i_, c)) fail(at, "malformed UTF-8");
    return c;
  }

  Term value(std::size_t depth) {
    if (depth > opts_.max_depth) fail(i_, "nesting deeper than " + std::to_string(opts_.max_depth));
    ws();
    if (at_end()) fail(i_, "expected a term, found the end of the text");
    const char c = peek();
    switch (c) {
      case '{': return tuple(depth);
      case '[': return list(depth);
      case '"': return string();
      case '\'': return Term(quoted_atom());
      case '$': case '-': case '+': return number();
      case '<': return peek(1) == '<' ? binary() : Term(pid());
      case '#':
        if (starts("#{")) return map(depth);
        if (starts("#Ref<")) return Term(ref());
        if (starts("#Port<")) return Term(port());
        if (starts("#Fun<")) fail(i_, "a local fun cannot be written as text");
        fail(i_, "expected '#{', '#Ref<' or '#Port<'");
      default: break;
    }
    if (is_digit(c)) return number();
    std::size_t probe = i_;
    char32_t cp;
    if (detail::utf8_next(s_, probe, cp) && is_atom_start(cp)) {
      Atom a = plain_atom();
      if (a.text() == "fun") return export_fun();
      return Term(a);
    }
    fail(i_, std::string("unexpected character '") + c + "'");
  }

  Atom make_atom(std::size_t at, std::string_view text) {
    auto a = Atom::make(text);
    if (!a) fail(at, a.error());
    return *a;
  }

  Atom plain_atom() {
    const std::size_t at = i_;
    while (!at_end()) {
      std::size_t probe = i_;
      char32_t cp;
      if (!detail::utf8_next(s_, probe, cp) || !is_atom_char(cp)) break;
      i_ = probe;
    }
    return make_atom(at, s_.substr(at, i_ - at));
  }

  Atom quoted_atom() {
    const std::size_t at = i_;
    std::string text;
    quoted('\'', [&](char32_t c) { detail::utf8_append(text, c); });
    return make_atom(at, text);
  }

  Atom any_atom() {
    ws();
    if (peek() == '\'') return quoted_atom();
    std::size_t probe = i_;
    char32_t cp;
    if (detail::utf8_next(s_, probe, cp) && is_atom_start(cp)) return plain_atom();
    fail(i_, "expected an atom" + found());
  }

  // Reads "..." or '...' from the opening quote, handing each character to `emit`.
  template <class F>
  void quoted(char q, F&& emit) {
    ++i_;
    for (;;) {
      if (at_end()) fail(i_, std::string("unterminated ") + (q == '"' ? "string" : "quoted atom"));
      if (s_[i_] == q) { ++i_; return; }
      emit(s_[i_] == '\\' ? escape() : next_char());
    }
  }

  static int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }

  char32_t escape() {
    const std::size_t at = i_;
    ++i_;  // backslash
    if (at_end()) fail(at, "unterminated escape");
    const char c = s_[i_];
    if (c >= '0' && c <= '7') {
      unsigned v = 0;
      for (int k = 0; k < 3 && peek() >= '0' && peek() <= '7'; ++k) v = v * 8 + static_cast<unsigned>(s_[i_++] - '0');
      return v;
    }
    ++i_;
    switch (c) {
      case 'b': return '\b';
      case 'd': return 127;
      case 'e': return 27;
      case 'f': return '\f';
      case 'n': return '\n';
      case 'r': return '\r';
      case 's': return ' ';
      case 't': return '\t';
      case 'v': return '\v';
      case '^': {
        if (at_end()) fail(at, "unterminated escape");
        return static_cast<char32_t>(s_[i_++] & 31);
      }
      case 'x': {
        long long v = 0;
        if (peek() == '{') {
          ++i_;
          std::size_t n = 0;
          while (hex_value(peek()) >= 0) {
            v = v * 16 + hex_value(s_[i_++]);
            if (++n > 8) fail(at, "\\x{...} escape too long");
          }
          if (n == 0 || peek() != '}') fail(at, "malformed \\x{...} escape");
          ++i_;
        } else {
          if (hex_value(peek()) < 0 || hex_value(peek(1)) < 0) fail(at, "malformed \\xHH escape");
          v = hex_value(s_[i_]) * 16 + hex_value(s_[i_ + 1]);
          i_ += 2;
        }
        if (!detail::is_unicode_scalar(v)) fail(at, "escape is not a Unicode code point");
        return static_cast<char32_t>(v);
      }
      default:
        --i_;
        return next_char();
    }
  }

  // Digits with optional single '_' separators between them; returns them without the '_'.
  std::string digits(int base) {
    std::string out;
    const std::size_t at = i_;
    auto ok = [&](char ch) {
      const int v = hex_value(ch) >= 0 ? hex_value(ch) : (ch >= 'g' && ch <= 'z' ? ch - 'a' + 10 : (ch >= 'G' && ch <= 'Z' ? ch - 'A' + 10 : -1));
      return v >= 0 && v < base;
    };
    while (!at_end()) {
      if (ok(s_[i_])) { out.push_back(s_[i_++]); continue; }
      if (s_[i_] == '_' && !out.empty() && ok(peek(1))) { ++i_; continue; }
      break;
    }
    if (out.empty()) fail(at, "expected digits" + found());
    if (out.size() > kMaxNumberChars) fail(at, "number longer than " + std::to_string(kMaxNumberChars) + " digits");
    return out;
  }

  Term integer_from(std::string_view ds, int base, bool neg, std::size_t at) {
    auto v = BigInt::parse((neg ? "-" : "") + std::string(ds), base);
    if (!v) fail(at, "malformed integer");
    return Term(*v);
  }

  Term number() {
    const std::size_t at = i_;
    bool neg = false;
    if (peek() == '-' || peek() == '+') {
      neg = peek() == '-';
      ++i_;
      ws();
    }
    if (peek() == '$') {
      ++i_;
      if (at_end()) fail(at, "expected a character after '$'");
      const char32_t c = s_[i_] == '\\' ? escape() : next_char();
      return Term(neg ? -static_cast<std::int64_t>(c) : static_cast<std::int64_t>(c));
    }
    if (!is_digit(peek())) fail(i_, "expected a number" + found());
    std::string ds = digits(10);
    if (peek() == '#') {
      ++i_;
      int base = 0;
      auto r = std::from_chars(ds.data(), ds.data() + ds.size(), base);
      if (r.ec != std::errc() || base < 2 || base > 36) fail(at, "base must be 2..36");
      return integer_from(digits(base), base, neg, at);
    }
    if (peek() == '.' && is_digit(peek(1))) {
      ++i_;
      std::string text = ds + "." + digits(10);
      if (peek() == 'e' || peek() == 'E') {
        std::size_t save = i_;
        ++i_;
        std::string exp = "e";
        if (peek() == '-' || peek() == '+') exp.push_back(s_[i_++]);
        if (is_digit(peek())) text += exp + digits(10);
        else i_ = save;
      }
      double d = 0;
      auto r = std::from_chars(text.data(), text.data() + text.size(), d);
      if (r.ec != std::errc() || r.ptr != text.data() + text.size()) fail(at, "float out of range");
      return Term(neg ? -d : d);
    }
    return integer_from(ds, 10, neg, at);
  }

  Term string() {
    std::vector<Term> chars;
    for (;;) {
      quoted('"', [&](char32_t c) { chars.emplace_back(static_cast<std::int64_t>(c)); });
      const std::size_t save = i_;
      ws();
      if (peek() != '"') { i_ = save; break; }
    }
    return Term::list(std::move(chars));
  }

  Term tuple(std::size_t depth) {
    ++i_;
    std::vector<Term> elems;
    ws();
    if (peek() == '}') { ++i_; return Term::tuple(std::move(elems)); }
    for (;;) {
      elems.push_back(value(depth + 1));
      ws();
      if (peek() == ',') { ++i_; continue; }
      if (peek() == '}') { ++i_; return Term::tuple(std::move(elems)); }
      fail(i_, "expected ',' or '}'" + found());
    }
  }

  Term list(std::size_t depth) {
    ++i_;
    std::vector<Term> elems;
    ws();
    if (peek() == ']') { ++i_; return Term(); }
    for (;;) {
      elems.push_back(value(depth + 1));
      ws();
      if (peek() == ',') { ++i_; continue; }
      if (peek() == '|') {
        ++i_;
        Term tail = value(depth + 1);
        expect(']');
        return Term::list(std::move(elems), std::move(tail));
      }
      if (peek() == ']') { ++i_; return Term::list(std::move(elems)); }
      fail(i_, "expected ',', '|' or ']'" + found());
    }
  }

  Term map(std::size_t depth) {
    i_ += 2;
    std::vector<MapEntry> entries;
    ws();
    if (peek() == '}') { ++i_; return Term::map(std::move(entries)); }
    for (;;) {
      Term k = value(depth + 1);
      ws();
      if (!starts("=>")) fail(i_, "expected '=>'" + found());
      i_ += 2;
      Term v = value(depth + 1);
      entries.emplace_back(std::move(k), std::move(v));
      ws();
      if (peek() == ',') { ++i_; continue; }
      if (peek() == '}') { ++i_; return Term::map(std::move(entries)); }
      fail(i_, "expected ',' or '}'" + found());
    }
  }

  std::uint64_t plain_uint(std::uint64_t max) {
    ws();
    const std::size_t at = i_;
    std::uint64_t v = 0;
    auto r = std::from_chars(s_.data() + i_, s_.data() + s_.size(), v);
    if (r.ec != std::errc() || v > max) fail(at, "expected an unsigned integer of at most " + std::to_string(max));
    i_ = static_cast<std::size_t>(r.ptr - s_.data());
    return v;
  }

  // The node of a printed pid/ref/port: an atom, or 0 for the local node as erl prints it.
  Atom node_part() {
    ws();
    if (is_digit(peek())) {
      const std::size_t at = i_;
      if (plain_uint(UINT32_MAX) != 0) fail(at, "a node index other than 0 cannot be resolved: write the node name");
      return atoms::nonode_nohost();
    }
    return any_atom();
  }

  Pid pid() {
    ++i_;
    Pid p;
    p.node = node_part();
    expect('.');
    p.id = static_cast<std::uint32_t>(plain_uint(UINT32_MAX));
    expect('.');
    p.serial = static_cast<std::uint32_t>(plain_uint(UINT32_MAX));
    expect('>');
    return p;
  }

  Ref ref() {
    const std::size_t at = i_;
    i_ += 5;
    Ref r;
    r.node = node_part();
    std::vector<std::uint32_t> words;
    while (ws(), peek() == '.') {
      ++i_;
      words.push_back(static_cast<std::uint32_t>(plain_uint(UINT32_MAX)));
    }
    expect('>');
    if (words.empty() || words.size() > Ref::kMaxWords) fail(at, "a reference has 1 to 5 numbers");
    r.len = static_cast<std::uint8_t>(words.size());
    for (std::size_t k = 0; k < words.size(); ++k) r.ids[k] = words[words.size() - 1 - k];
    return r;
  }

  Port port() {
    i_ += 6;
    Port p;
    p.node = node_part();
    expect('.');
    p.id = plain_uint(UINT64_MAX);
    expect('>');
    return p;
  }

  Term export_fun() {
    ExportFun f;
    f.module = any_atom();
    expect(':');
    f.function = any_atom();
    expect('/');
    f.arity = static_cast<std::uint8_t>(plain_uint(255));
    return Term(f);
  }

  Term binary() {
    i_ += 2;
    BitWriter w;
    ws();
    if (starts(">>")) { i_ += 2; return w.finish(); }
    for (;;) {
      segment(w);
      ws();
      if (peek() == ',') { ++i_; continue; }
      if (starts(">>")) { i_ += 2; return w.finish(); }
      fail(i_, "expected ',' or '>>'" + found());
    }
  }

  // Value[:Size][/Type] where Value is an integer, a character or a string.
  void segment(BitWriter& w) {
    ws();
    const std::size_t at = i_;
    std::vector<char32_t> str;
    BigInt num;
    bool is_string = peek() == '"';
    if (is_string) {
      for (;;) {
        quoted('"', [&](char32_t c) { str.push_back(c); });
        const std::size_t save = i_;
        ws();
        if (peek() != '"') { i_ = save; break; }
      }
    } else {
      Term n = number();
      if (!n.is_integer()) fail(at, "binary segments hold integers or strings");
      num = n.big_integer();
    }
    std::size_t size = 8;
    bool sized = false;
    if (peek() == ':') {
      ++i_;
      size = plain_uint(1u << 20);
      sized = true;
    }
    std::string type;
    if (peek() == '/') {
      ++i_;
      const std::size_t tat = i_;
      while (std::isalnum(static_cast<unsigned char>(peek())) || peek() == '-') type.push_back(s_[i_++]);
      if (type != "utf8" && type != "integer") fail(tat, "unsupported binary segment type '" + type + "' (utf8 and integer are)");
    }
    if (type == "utf8") {
      if (sized) fail(at, "a utf8 segment takes no size");
      std::string enc;
      if (is_string) for (auto c : str) detail::utf8_append(enc, c);
      else {
        const auto cp = num.to_int64();
        if (!cp || !detail::is_unicode_scalar(*cp)) fail(at, "not a Unicode code point");
        detail::utf8_append(enc, static_cast<char32_t>(*cp));
      }
      for (char b : enc) w.put_byte(static_cast<std::uint8_t>(b));
      return;
    }
    if (is_string) {
      for (auto c : str) w.put(BigInt(static_cast<std::int64_t>(c)), size);
      return;
    }
    w.put(num, size);
  }

  std::string_view s_;
  std::size_t i_ = 0;
  const ParseOptions& opts_;
};

}  // namespace

Result<Term, ParseError> parse_term(std::string_view text, const ParseOptions& opts) {
  try {
    Parser p(text, opts);
    return p.document();
  } catch (Failure& f) {
    return unexpected(ParseError{f.offset, std::move(f.reason)});
  } catch (std::invalid_argument& e) {  // e.g. a float literal too large to be finite
    return unexpected(ParseError{0, e.what()});
  }
}

}  // namespace hypha
