#include "atom_table.hpp"

#include <atomic>
#include <deque>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <unordered_map>

#include "utf8.hpp"

namespace hypha {
namespace detail {
namespace {

// The empty atom needs no table lookup: Atom() is the commonest construction of all.
AtomEntry empty_entry{};

struct Table {
  std::mutex mu;
  std::deque<AtomEntry> entries;  // stable addresses
  std::unordered_map<std::string_view, const AtomEntry*> by_text;
  std::atomic<std::size_t> count{1};  // by_text.size(), readable without the lock
  Table() { by_text.emplace(std::string_view(), &empty_entry); }
};

Table& table() {
  static Table* t = new Table();  // never destroyed: atoms outlive every static
  return *t;
}

// Lock-free fast path: a small per-thread cache of recent lookups. Entries are immutable and
// never freed, so a cached pointer stays valid.
constexpr std::size_t kCacheSize = 1024;
thread_local const AtomEntry* cache[kCacheSize];

bool describe(std::string_view text, std::uint32_t& length, bool& latin1) {
  std::size_t i = 0, n = 0;
  char32_t cp;
  latin1 = true;
  while (i < text.size()) {
    if (!utf8_next(text, i, cp)) return false;
    if (cp > 0xFF) latin1 = false;
    ++n;
  }
  length = static_cast<std::uint32_t>(n);
  return true;
}

}  // namespace

const AtomEntry* intern(std::string_view text, bool may_create, InternStatus* status, Atom::Source source) {
  if (text.empty()) {
    *status = InternStatus::Found;
    return &empty_entry;
  }
  const std::size_t h = std::hash<std::string_view>{}(text);
  const AtomEntry*& slot = cache[h & (kCacheSize - 1)];
  if (slot && slot->hash == h && slot->text == text) {
    *status = InternStatus::Found;
    return slot;
  }
  std::uint32_t length;
  bool latin1;
  if (!describe(text, length, latin1) || length > Atom::kMaxChars) {
    *status = InternStatus::Invalid;
    return nullptr;
  }
  Table& t = table();
  std::lock_guard lock(t.mu);
  if (auto it = t.by_text.find(text); it != t.by_text.end()) {
    *status = InternStatus::Found;
    slot = it->second;
    return it->second;
  }
  if (!may_create) {
    *status = InternStatus::Missing;
    return nullptr;
  }
  if (t.by_text.size() >= Atom::limit(source)) {
    *status = InternStatus::TableFull;
    return nullptr;
  }
  AtomEntry& e = t.entries.emplace_back();
  e.text.assign(text);
  e.hash = h;
  e.index = static_cast<std::uint32_t>(t.by_text.size());
  e.length = length;
  e.latin1 = latin1;
  t.by_text.emplace(std::string_view(e.text), &e);
  t.count.store(t.by_text.size(), std::memory_order_relaxed);
  *status = InternStatus::Created;
  slot = &e;
  return &e;
}

}  // namespace detail

namespace {
Result<Atom, std::string> lookup(std::string_view text, bool may_create, Atom::Source source) {
  detail::InternStatus st;
  const detail::AtomEntry* e = detail::intern(text, may_create, &st, source);
  switch (st) {
    case detail::InternStatus::Found:
    case detail::InternStatus::Created:
      return AtomAccess::from(e);
    case detail::InternStatus::Invalid:
      return unexpected(std::string(
          detail::utf8_length(text) ? "atom longer than 255 characters" : "atom is not valid UTF-8"));
    case detail::InternStatus::TableFull:
      return unexpected(std::string("atom table full"));
    case detail::InternStatus::Missing:
      break;
  }
  return unexpected(std::string("no such atom"));
}
}  // namespace

Atom::Atom() noexcept : e_(&detail::empty_entry) {}

Atom::Atom(std::string_view utf8) : e_(nullptr) {
  auto r = lookup(utf8, true, Source::Program);
  if (!r) throw std::invalid_argument("invalid atom: " + r.error());
  e_ = AtomAccess::entry(*r);
}

Result<Atom, std::string> Atom::make(std::string_view utf8, Source source) { return lookup(utf8, true, source); }
Result<Atom, std::string> Atom::existing(std::string_view utf8) { return lookup(utf8, false, Source::Input); }

Result<Atom, std::string> Atom::from_latin1(std::string_view latin1) {
  std::string scratch;
  return make(detail::latin1_as_utf8(latin1, scratch));
}

std::string_view Atom::text() const noexcept { return e_->text; }
std::size_t Atom::length() const noexcept { return e_->length; }
bool Atom::is_latin1() const noexcept { return e_->latin1; }
std::uint32_t Atom::index() const noexcept { return e_->index; }
std::size_t Atom::hash() const noexcept { return e_->hash; }

std::size_t Atom::count() noexcept { return detail::table().count.load(std::memory_order_relaxed); }

std::strong_ordering operator<=>(Atom a, Atom b) noexcept {
  if (a.e_ == b.e_) return std::strong_ordering::equal;
  const int c = a.text().compare(b.text());  // UTF-8 byte order == code point order
  return c < 0 ? std::strong_ordering::less : std::strong_ordering::greater;
}

namespace atoms {
Atom ok() { static const Atom a("ok"); return a; }
Atom error() { static const Atom a("error"); return a; }
Atom true_() { static const Atom a("true"); return a; }
Atom false_() { static const Atom a("false"); return a; }
Atom undefined() { static const Atom a("undefined"); return a; }
Atom nonode_nohost() { static const Atom a("nonode@nohost"); return a; }
}  // namespace atoms

}  // namespace hypha
