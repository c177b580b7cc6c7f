// Registers `vigil eval` on the CLI (one call from main.cpp keeps merges easy).
//   vigil eval <replay.jsonl> --record <path-without-ext> [--json out.json]
//   vigil eval --replays <dir> --records <dir> [--json out.json]   (every <dir>/<name>.jsonl
//                                                                   against <records>/<name>)
//   vigil eval --episodes --replays <dir> --records <dir> [--cinc REFERENCE.csv] [--json out]
//                                                                  (rhythm episodes,
//                                                                  episode_eval.h)
// Exit code: 0 on success, 2 on unreadable input (message on stderr).
#pragma once

namespace CLI {
class App;
}

namespace vigil::eval {

void AddEvalCommand(CLI::App& app);

}  // namespace vigil::eval
