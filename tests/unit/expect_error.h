// A bad-input check shared by the unit tests: `fn` must throw std::invalid_argument (core's
// InputError, or the one editing/ and models/ throw), and the message must name every word given.
#pragma once

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <vector>

namespace dsk::test {

template <class Fn>
void expect_input_error(Fn fn, const std::vector<std::string>& words) {
  try {
    fn();
    ADD_FAILURE() << "no std::invalid_argument thrown";
  } catch (const std::invalid_argument& e) {
    const std::string msg = e.what();
    for (const auto& w : words) EXPECT_NE(msg.find(w), std::string::npos) << "'" << w << "' not in: " << msg;
  }
}

}  // namespace dsk::test
