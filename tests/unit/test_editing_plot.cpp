// Loss plots (editing/plot.h): CSV reading with its errors, and a plot whose curve lands where
// its values say.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <opencv2/imgcodecs.hpp>

#include "editing/error.h"
#include "editing/plot.h"

namespace fs = std::filesystem;

namespace {

fs::path write_file(const std::string& name, const std::string& text) {
  const auto path = fs::temp_directory_path() / ("dsk-test-plot-" + std::to_string(::getpid()) + "-" + name);
  std::ofstream(path) << text;
  return path;
}

template <class Fn>
std::string error_of(Fn fn) {
  try {
    fn();
  } catch (const dsk::edit::InputError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(Csv, ReadsTheHeaderAndColumns) {
  const auto p = write_file("ok.csv", "step,loss,steps_per_s\n25,0.8,1.0\r\n50,0.4,1.1\n\n75,0.2,0.9\n");
  const auto t = dsk::edit::read_csv_table(p.string());
  ASSERT_EQ(t.names, (std::vector<std::string>{"step", "loss", "steps_per_s"}));
  EXPECT_EQ(t.column("step"), (std::vector<double>{25, 50, 75}));
  EXPECT_EQ(t.column("loss"), (std::vector<double>{0.8, 0.4, 0.2}));
  EXPECT_NE(error_of([&] { t.column("lr"); }).find("its columns: step, loss, steps_per_s"), std::string::npos);
  fs::remove(p);
}

TEST(Csv, BadFilesAreClearErrors) {
  EXPECT_NE(error_of([] { dsk::edit::read_csv_table("/nonexistent/loss.csv"); }).find("cannot read"), std::string::npos);
  const auto empty = write_file("empty.csv", "");
  EXPECT_NE(error_of([&] { dsk::edit::read_csv_table(empty.string()); }).find("is empty"), std::string::npos);
  const auto ragged = write_file("ragged.csv", "step,loss\n1,0.5\n2\n");
  EXPECT_NE(error_of([&] { dsk::edit::read_csv_table(ragged.string()); }).find(":3: 1 fields, the header has 2"),
            std::string::npos);
  const auto text = write_file("text.csv", "step,loss\n1,abc\n");
  EXPECT_NE(error_of([&] { dsk::edit::read_csv_table(text.string()); }).find(":2: 'abc' is not a number"),
            std::string::npos);
  const auto header_only = write_file("header.csv", "step,loss\n");
  EXPECT_NE(error_of([&] { dsk::edit::write_loss_plot(header_only.string(), "/tmp/x.png", ""); }).find("no rows"),
            std::string::npos);
  for (const auto& p : {empty, ragged, text, header_only}) fs::remove(p);
}

TEST(Plot, TheCurveFallsFromTopLeftToBottomRight) {
  // A loss falling over two decades on a log axis is a straight line from the top-left corner of
  // the plot area to the bottom-right one: dark (smoothed) pixels near the diagonal only.
  std::vector<double> x, y;
  for (int i = 0; i <= 200; ++i) x.push_back(i * 10), y.push_back(std::pow(10.0, -2.0 * i / 200));
  dsk::edit::PlotOptions o;
  o.title = "test";
  const cv::Mat img = dsk::edit::plot_curve(x, y, o);
  ASSERT_EQ(img.type(), CV_8UC3);
  ASSERT_EQ(img.size(), cv::Size(o.width, o.height));
  // The moving average is drawn in (160, 70, 20) BGR: find its pixels.
  int near = 0, far = 0;
  const cv::Rect area(80, 40, o.width - 100, o.height - 95);
  for (int r = area.y + 5; r < area.y + area.height - 5; ++r)
    for (int c = area.x + 5; c < area.x + area.width - 5; ++c) {
      const auto p = img.at<cv::Vec3b>(r, c);
      if (std::abs(p[0] - 160) > 30 || std::abs(p[1] - 70) > 30 || std::abs(p[2] - 20) > 30) continue;
      // Expected row on the diagonal (5% padding above and below the data range).
      const double fx = double(c - area.x) / area.width;
      const double expect = area.y + area.height * (0.05 + 0.9 * fx) / 1.0;
      (std::abs(r - expect) < 0.06 * area.height ? near : far)++;
    }
  EXPECT_GT(near, area.width / 2);
  EXPECT_LT(far, near / 20);
}

TEST(Plot, RejectsDataThatCannotBeDrawn) {
  dsk::edit::PlotOptions o;
  EXPECT_NE(error_of([&] { dsk::edit::plot_curve({1, 2}, {1}, o); }).find("x has 2 values, y 1"), std::string::npos);
  EXPECT_NE(error_of([&] { dsk::edit::plot_curve({1, 2}, {0, -1}, o); }).find("no finite, positive values"),
            std::string::npos);
  o.log_y = false;
  EXPECT_NO_THROW(dsk::edit::plot_curve({1, 2}, {0, -1}, o));
}
