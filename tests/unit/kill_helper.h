// Kill-and-resume tests (train, finetune): run a command, kill it hard once its checkpoint exists.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

namespace dsk::test {

// Runs `cmd` (stdout and stderr to `log`) and kills it with SIGKILL as soon as
// OUT/checkpoint/state.json records a step >= min_step (polled every 50 ms, for at most 60 s).
// Returns the step of the checkpoint it left behind, or -1 when there is none.
inline long run_and_kill_after_checkpoint(const std::string& cmd, const std::filesystem::path& out, long min_step,
                                          const std::filesystem::path& log) {
  const auto state = out / "checkpoint" / "state.json";
  const auto script = log.string() + ".killer.sh";
  std::ofstream(script) << "(" << cmd << " >" << log.string() << " 2>&1 & pid=$!; "
                        << "for i in $(seq 1200); do sleep 0.05; s=$(grep -o '\"step\": [0-9]*' " << state.string()
                        << " 2>/dev/null | grep -o '[0-9]*$'); [ \"${s:-0}\" -ge " << min_step
                        << " ] && break; done; kill -9 $pid; wait $pid)\n";
  std::system(("bash " + script).c_str());
  std::ifstream in(state);
  return in ? nlohmann::json::parse(in)["step"].get<long>() : -1;
}

}  // namespace dsk::test
