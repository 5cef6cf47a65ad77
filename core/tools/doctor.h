// `diffsketch doctor`: what a bug report needs and what a user can fix. Each check catches its own
// failure and reports it, so a broken installation still gets a whole report.
//
//   diffsketch doctor            # text; exit 0 when all is well, 1 when something needs fixing
//   diffsketch doctor --json     # the same checks for programs (the GIMP dialog's Diagnose button)
#pragma once

#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <vector>

namespace dsk {

struct DoctorCheck {
  enum class Status { Ok, Info, Warn, Fail };
  std::string id;      // "gimp", "plug-in", "registered", "engine", "server", "model:default", "cpu", ...
  std::string title;   // "GIMP 3"
  Status status = Status::Ok;
  std::string detail;  // what was found
  std::string fix;     // in words, when status is Warn or Fail
};

struct DoctorOptions {
  // Skip asking GIMP in batch mode whether the procedures are registered (the plug-in asks from
  // inside GIMP, where they evidently are); the other GIMP checks still run.
  bool from_plugin = false;
  int gimp_timeout_s = 120;
};

std::vector<DoctorCheck> run_doctor(const DoctorOptions& options);
const char* status_name(DoctorCheck::Status s);  // "ok", "info", "warn", "fail"
bool all_well(const std::vector<DoctorCheck>& checks);  // no Fail
void print_doctor(const std::vector<DoctorCheck>& checks, std::ostream& out);
nlohmann::json doctor_json(const std::vector<DoctorCheck>& checks);

}  // namespace dsk
