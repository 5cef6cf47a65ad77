// `diffsketch doctor [--json] [--from-plugin]` (core/tools/doctor.h).
#include <iostream>

#include "core/cli/commands.h"
#include "core/tools/doctor.h"

namespace dsk::cli {

void register_doctor(CLI::App& app, Runners& runners) {
  auto* cmd = app.add_subcommand("doctor", "check the installation (GIMP, plug-in, engine, models, CPU, memory) and say how to fix problems");
  static bool as_json = false;
  static DoctorOptions o;
  cmd->add_flag("--json", as_json, "machine-readable");
  cmd->add_flag("--from-plugin", o.from_plugin, "run by the GIMP plug-in: do not start GIMP to ask whether it is registered");
  cmd->add_option("--gimp-timeout", o.gimp_timeout_s, "seconds to wait for GIMP in batch mode")->capture_default_str()->check(CLI::Range(5, 3600));
  runners.push_back([cmd] {
    if (!cmd->parsed()) return -1;
    const auto checks = run_doctor(o);
    if (as_json)
      std::cout << doctor_json(checks).dump(2) << "\n";
    else
      print_doctor(checks, std::cout);
    return all_well(checks) ? 0 : 1;
  });
}

}  // namespace dsk::cli
