// Line plots of training curves (loss.csv of train / finetune) as PNG pictures, with OpenCV only.
//
//   auto table = dsk::edit::read_csv_table("run/loss.csv");        // header row + numeric rows
//   dsk::edit::PlotOptions o; o.title = "training loss"; o.log_y = true;
//   cv::Mat png = dsk::edit::plot_curve(table.column("step"), table.column("loss"), o);
#pragma once

#include <string>
#include <vector>

#include <opencv2/core.hpp>

namespace dsk::edit {

// A CSV file with a header row and numeric rows (train's and finetune's loss.csv).
struct CsvTable {
  std::vector<std::string> names;
  std::vector<std::vector<double>> rows;

  // The values of the named column; edit::InputError naming the columns there are when absent.
  std::vector<double> column(const std::string& name) const;
};

// Reads `path`; edit::InputError for a missing file, an empty one, a row with another number of
// fields than the header, or a field that is not a number (with its line number).
CsvTable read_csv_table(const std::string& path);

struct PlotOptions {
  int width = 900, height = 500;
  std::string title, x_label = "step", y_label = "loss";
  bool log_y = true;  // losses fall over decades
  int smooth = 0;     // > 0: also draw the moving average over this many points (0 = automatic)
};

// The raw points (light) and their moving average (dark) against x, with axes, ticks and labels.
// x and y must have the same non-zero length; non-finite or (with log_y) non-positive y values are
// left out. Returns an 8-bit BGR picture.
cv::Mat plot_curve(const std::vector<double>& x, const std::vector<double>& y, const PlotOptions& options);

// Reads the CSV, plots `column` against its first column ("step" or "iter") and writes the PNG.
void write_loss_plot(const std::string& csv_path, const std::string& png_path, const std::string& title,
                     const std::string& column = "loss");

}  // namespace dsk::edit
