// libFuzzer target: io_lib_format (format strings arrive from other nodes' io requests). The input
// is a format, then a newline and the arguments in Erlang syntax (a list); without them, a fixed
// list of one term of each kind. Whatever it gives, it must not crash or read out of bounds.
#include <cstdint>
#include <string_view>

#include "hypha/term.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const std::size_t nl = in.find('\n');
  const std::string_view format = in.substr(0, nl);
  static const hypha::Term kDefault =
      *hypha::parse_term(R"([1, -7, 3.25, "abc", <<"bin">>, atom, {t, [1,2|3]}, #{k => v}, 123456789012345678901234567890, <<1,2,5:3>>, 16, 2])");
  hypha::Term args = kDefault;
  if (nl != std::string_view::npos) {
    auto parsed = hypha::parse_term(in.substr(nl + 1));
    if (parsed && parsed->is_proper_list()) args = *parsed;
  }
  const auto argv = args.list_elements();
  auto r = hypha::io_lib_format(format, argv);
  (void)r;
  return 0;
}
