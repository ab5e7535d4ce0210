// `hypha rpc` and `hypha call`: rpc:call and gen_server:call from the shell, against C++ and BEAM
// nodes alike.
#pragma once

namespace CLI {
class App;
}

namespace hypha::cli {

void add_otp_commands(CLI::App& app, int& exit_code);

}  // namespace hypha::cli
