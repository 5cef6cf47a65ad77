#include "editing/plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "editing/error.h"

namespace dsk::edit {

namespace {

std::vector<std::string> split_fields(const std::string& line) {
  std::vector<std::string> out;
  std::stringstream ss(line);
  std::string f;
  while (std::getline(ss, f, ',')) out.push_back(f);
  if (!line.empty() && line.back() == ',') out.emplace_back();
  return out;
}

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\r' || s.back() == ' ')) s.pop_back();
  size_t i = 0;
  while (i < s.size() && s[i] == ' ') ++i;
  return s.substr(i);
}

// "Nice" tick positions (1, 2, 5 x 10^k) covering [lo, hi].
std::vector<double> linear_ticks(double lo, double hi, int target) {
  const double raw = (hi - lo) / std::max(target, 1);
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (m * mag >= raw) {
      step = m * mag;
      break;
    }
  std::vector<double> ticks;
  for (double v = std::ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) ticks.push_back(v);
  return ticks;
}

std::string label_of(double v) {
  char buf[32];
  const double a = std::abs(v);
  if (a != 0 && (a >= 1e5 || a < 1e-3)) std::snprintf(buf, sizeof buf, "%.0e", v);
  else if (a >= 100 || v == std::round(v)) std::snprintf(buf, sizeof buf, "%.0f", v);
  else std::snprintf(buf, sizeof buf, "%.3g", v);
  return buf;
}

}  // namespace

std::vector<double> CsvTable::column(const std::string& name) const {
  const auto it = std::find(names.begin(), names.end(), name);
  if (it == names.end()) {
    std::string have;
    for (const auto& n : names) have += (have.empty() ? "" : ", ") + n;
    throw InputError("no column '" + name + "' in the CSV (its columns: " + have + ")");
  }
  const size_t k = static_cast<size_t>(it - names.begin());
  std::vector<double> out;
  out.reserve(rows.size());
  for (const auto& r : rows) out.push_back(r[k]);
  return out;
}

CsvTable read_csv_table(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw InputError("cannot read '" + path + "' (missing or unreadable CSV file)");
  CsvTable t;
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    line = trimmed(line);
    if (line.empty()) continue;
    auto fields = split_fields(line);
    if (t.names.empty()) {
      for (auto& f : fields) t.names.push_back(trimmed(f));
      continue;
    }
    if (fields.size() != t.names.size())
      throw InputError(path + ":" + std::to_string(number) + ": " + std::to_string(fields.size()) +
                       " fields, the header has " + std::to_string(t.names.size()));
    std::vector<double> row;
    for (const auto& f : fields) {
      const std::string v = trimmed(f);
      size_t used = 0;
      double d = 0;
      try {
        d = std::stod(v, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (v.empty() || used != v.size())
        throw InputError(path + ":" + std::to_string(number) + ": '" + v + "' is not a number");
      row.push_back(d);
    }
    t.rows.push_back(std::move(row));
  }
  if (t.names.empty()) throw InputError("'" + path + "' is empty (expected a header row and numeric rows)");
  return t;
}

cv::Mat plot_curve(const std::vector<double>& x, const std::vector<double>& y, const PlotOptions& o) {
  if (x.size() != y.size()) throw InputError("plot: x has " + std::to_string(x.size()) + " values, y " + std::to_string(y.size()));
  std::vector<cv::Point2d> pts;
  for (size_t i = 0; i < x.size(); ++i)
    if (std::isfinite(x[i]) && std::isfinite(y[i]) && (!o.log_y || y[i] > 0))
      pts.emplace_back(x[i], o.log_y ? std::log10(y[i]) : y[i]);
  if (pts.empty()) throw InputError("plot: no finite" + std::string(o.log_y ? ", positive" : "") + " values to draw");
  if (o.width < 200 || o.height < 150) throw InputError("plot: the picture must be at least 200x150 px");

  double x0 = pts.front().x, x1 = x0, y0 = pts.front().y, y1 = y0;
  for (const auto& p : pts) {
    x0 = std::min(x0, p.x), x1 = std::max(x1, p.x);
    y0 = std::min(y0, p.y), y1 = std::max(y1, p.y);
  }
  if (x1 == x0) x0 -= 1, x1 += 1;
  if (y1 == y0) y0 -= 0.5, y1 += 0.5;
  const double pad = (y1 - y0) * 0.05;
  y0 -= pad, y1 += pad;

  cv::Mat img(o.height, o.width, CV_8UC3, cv::Scalar(255, 255, 255));
  const int left = 80, right = 20, top = o.title.empty() ? 20 : 40, bottom = 55;
  const cv::Rect area(left, top, o.width - left - right, o.height - top - bottom);
  auto to_px = [&](double px, double py) {
    return cv::Point(area.x + static_cast<int>(std::lround((px - x0) / (x1 - x0) * area.width)),
                     area.y + area.height - static_cast<int>(std::lround((py - y0) / (y1 - y0) * area.height)));
  };
  const auto font = cv::FONT_HERSHEY_SIMPLEX;
  const cv::Scalar grid(225, 225, 225), ink(40, 40, 40);

  // Y ticks: decades (and 2x, 5x) on a log axis, nice numbers on a linear one.
  std::vector<double> yticks;
  if (o.log_y) {
    const bool dense = y1 - y0 < 2.5;
    for (int e = static_cast<int>(std::floor(y0)); e <= static_cast<int>(std::ceil(y1)); ++e)
      for (double m : dense ? std::vector<double>{1, 2, 5} : std::vector<double>{1}) {
        const double v = e + std::log10(m);
        if (v >= y0 && v <= y1) yticks.push_back(v);
      }
  } else {
    yticks = linear_ticks(y0, y1, 6);
  }
  for (double v : yticks) {
    const auto p = to_px(x0, v);
    cv::line(img, {area.x, p.y}, {area.x + area.width, p.y}, grid, 1);
    const std::string s = label_of(o.log_y ? std::pow(10.0, v) : v);
    int base = 0;
    const auto size = cv::getTextSize(s, font, 0.45, 1, &base);
    cv::putText(img, s, {area.x - size.width - 6, p.y + size.height / 2}, font, 0.45, ink, 1, cv::LINE_AA);
  }
  for (double v : linear_ticks(x0, x1, 8)) {
    const auto p = to_px(v, y0);
    cv::line(img, {p.x, area.y}, {p.x, area.y + area.height}, grid, 1);
    const std::string s = label_of(v);
    int base = 0;
    const auto size = cv::getTextSize(s, font, 0.45, 1, &base);
    cv::putText(img, s, {p.x - size.width / 2, area.y + area.height + size.height + 8}, font, 0.45, ink, 1, cv::LINE_AA);
  }
  cv::rectangle(img, area, ink, 1);

  std::vector<cv::Point> raw;
  for (const auto& p : pts) raw.push_back(to_px(p.x, p.y));
  cv::polylines(img, raw, false, cv::Scalar(235, 190, 150), 1, cv::LINE_AA);
  // Moving average (of the plotted value: geometric on a log axis).
  const int window = o.smooth > 0 ? o.smooth : std::max(1, static_cast<int>(pts.size()) / 40);
  if (window > 1) {
    std::vector<cv::Point> avg;
    double sum = 0;
    for (size_t i = 0; i < pts.size(); ++i) {
      sum += pts[i].y;
      if (i >= static_cast<size_t>(window)) sum -= pts[i - window].y;
      const int n = static_cast<int>(std::min<size_t>(i + 1, window));
      if (i + 1 >= static_cast<size_t>(std::min<size_t>(window, pts.size()))) avg.push_back(to_px(pts[i].x, sum / n));
    }
    cv::polylines(img, avg, false, cv::Scalar(160, 70, 20), 2, cv::LINE_AA);
  }

  int base = 0;
  const auto xs = cv::getTextSize(o.x_label, font, 0.5, 1, &base);
  cv::putText(img, o.x_label, {area.x + (area.width - xs.width) / 2, o.height - 10}, font, 0.5, ink, 1, cv::LINE_AA);
  const std::string yl = o.y_label + (o.log_y ? " (log)" : "");
  cv::putText(img, yl, {6, area.y - 8 > 12 ? area.y - 8 : 14}, font, 0.45, ink, 1, cv::LINE_AA);
  if (!o.title.empty()) {
    const auto ts = cv::getTextSize(o.title, font, 0.6, 1, &base);
    cv::putText(img, o.title, {(o.width - ts.width) / 2, 24}, font, 0.6, ink, 1, cv::LINE_AA);
  }
  return img;
}

void write_loss_plot(const std::string& csv_path, const std::string& png_path, const std::string& title,
                     const std::string& column) {
  const auto table = read_csv_table(csv_path);
  if (table.rows.empty()) throw InputError("'" + csv_path + "' has no rows to plot yet");
  PlotOptions o;
  o.title = title;
  o.x_label = table.names.front();
  o.y_label = column;
  const cv::Mat img = plot_curve(table.column(table.names.front()), table.column(column), o);
  if (!cv::imwrite(png_path, img)) throw InputError("cannot write '" + png_path + "' (check the folder exists and is writable)");
}

}  // namespace dsk::edit
