// editing/image_io: reading, writing, float layout.
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "editing/error.h"
#include "editing/image_io.h"

namespace fs = std::filesystem;
using namespace dsk::edit;

namespace {

class TempDir : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("dsk_editing_io_" + std::to_string(std::random_device{}()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  fs::path dir_;
};

cv::Mat random_image(int h, int w, int type, std::uint64_t seed) {
  cv::Mat m(h, w, type);
  cv::RNG rng(seed);
  rng.fill(m, cv::RNG::UNIFORM, 0, CV_MAT_DEPTH(type) == CV_16U ? 65536 : 256);
  return m;
}

bool identical(const cv::Mat& a, const cv::Mat& b) {
  if (a.size() != b.size() || a.type() != b.type()) return false;
  cv::Mat diff;
  cv::absdiff(a.reshape(1), b.reshape(1), diff);
  return cv::countNonZero(diff) == 0;
}

void write_bytes(const std::string& p, const std::vector<unsigned char>& bytes) {
  std::ofstream(p, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()),
                                           static_cast<std::streamsize>(bytes.size()));
}

std::string thrown_message(const std::function<void()>& f) {
  try {
    f();
  } catch (const dsk::edit::InputError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_F(TempDir, RoundTripsEightAndSixteenBitAllLayouts) {
  for (int depth : {CV_8U, CV_16U}) {
    for (int cn : {1, 3, 4}) {
      const cv::Mat img = random_image(37, 53, CV_MAKETYPE(depth, cn), 7 + cn);
      const std::string p = path("rt_" + std::to_string(depth) + "_" + std::to_string(cn) + ".png");
      write_image(p, img);
      const cv::Mat back = read_image(p);
      EXPECT_TRUE(identical(img, back)) << "depth " << depth << " channels " << cn;
    }
  }
}

TEST_F(TempDir, WriteLeavesNoTemporaryFilesAndOverwrites) {
  const std::string p = path("out.png");
  write_image(p, random_image(10, 10, CV_8UC3, 1));
  const cv::Mat second = random_image(12, 9, CV_8UC1, 2);
  write_image(p, second);
  EXPECT_TRUE(identical(read_image(p), second));
  int files = 0;
  for (const auto& e : fs::directory_iterator(dir_)) {
    ++files;
    EXPECT_EQ(e.path().filename(), "out.png");
  }
  EXPECT_EQ(files, 1);
}

TEST_F(TempDir, WriteRejectsBadInputsWithoutCreatingFiles) {
  EXPECT_THROW(write_image(path("a.jpg"), random_image(4, 4, CV_8UC3, 1)), dsk::edit::InputError);
  EXPECT_THROW(write_image(path("nodir/a.png"), random_image(4, 4, CV_8UC3, 1)), dsk::edit::InputError);
  EXPECT_THROW(write_image(path("f.png"), cv::Mat(4, 4, CV_32FC3, cv::Scalar::all(0.5))), dsk::edit::InputError);
  EXPECT_THROW(write_image(path("e.png"), cv::Mat()), dsk::edit::InputError);
  EXPECT_TRUE(fs::is_empty(dir_));
}

TEST_F(TempDir, MissingEmptyAndGarbageFilesGiveClearErrors) {
  EXPECT_NE(thrown_message([&] { read_image(path("nope.png")); }).find("does not exist"), std::string::npos);
  write_bytes(path("empty.png"), {});
  EXPECT_NE(thrown_message([&] { read_image(path("empty.png")); }).find("empty"), std::string::npos);
  write_bytes(path("junk.png"), {'h', 'e', 'l', 'l', 'o', ' ', 'w', 'o', 'r', 'l', 'd'});
  EXPECT_NE(thrown_message([&] { read_image(path("junk.png")); }).find("re-export it as PNG"), std::string::npos);
  EXPECT_THROW(read_image(dir_.string()), dsk::edit::InputError);  // a directory
}

TEST_F(TempDir, TruncatedPngIsRejected) {
  std::vector<unsigned char> buf;
  cv::imencode(".png", random_image(64, 64, CV_8UC3, 3), buf);
  buf.resize(buf.size() / 2);
  write_bytes(path("trunc.png"), buf);
  EXPECT_THROW(read_image(path("trunc.png")), dsk::edit::InputError);
}

TEST_F(TempDir, PixelCapAndMinimumSide) {
  const std::string png = path("big.png"), jpg = path("big.jpg");
  cv::imwrite(png, random_image(100, 120, CV_8UC3, 4));
  cv::imwrite(jpg, random_image(100, 120, CV_8UC3, 4));
  ReadLimits small_cap;
  small_cap.max_pixels = 100 * 120 - 1;
  EXPECT_NE(thrown_message([&] { read_image(png, small_cap); }).find("over the limit"), std::string::npos);
  EXPECT_NE(thrown_message([&] { read_image(jpg, small_cap); }).find("over the limit"), std::string::npos);
  small_cap.max_pixels = 100 * 120;
  EXPECT_EQ(read_image(png, small_cap).size(), cv::Size(120, 100));

  const std::string one = path("one.png");
  cv::imwrite(one, cv::Mat(1, 1, CV_8UC1, cv::Scalar(9)));
  EXPECT_EQ(read_image(one).size(), cv::Size(1, 1));  // default min_side = 1
  ReadLimits need8;
  need8.min_side = 8;
  EXPECT_NE(thrown_message([&] { read_image(one, need8); }).find("smaller than the minimum"), std::string::npos);
}

// Every format's size is read from its header before decoding: a small file claiming a huge image
// is refused with the pixel limit's message, not decoded first.
TEST_F(TempDir, EveryFormatsPixelBudgetIsCheckedFromItsHeader) {
  ReadLimits cap;
  cap.max_pixels = 100 * 120 - 1;
  int checked = 0;
  for (const char* ext : {".png", ".jpg", ".bmp", ".tif", ".webp", ".pgm", ".ppm", ".pbm", ".pfm", ".jp2", ".hdr", ".ras", ".exr"}) {
    const std::string p = path(std::string("fmt") + ext);
    const bool is_float = std::string(ext) == ".hdr" || std::string(ext) == ".pfm" || std::string(ext) == ".exr";
    cv::Mat img = random_image(100, 120, CV_8UC3, 5);
    if (std::string(ext) == ".pgm" || std::string(ext) == ".pbm") cv::cvtColor(img, img, cv::COLOR_BGR2GRAY);
    if (is_float) img.convertTo(img, CV_32FC3, 1.0 / 255);
    bool written = false;
    try {
      written = cv::imwrite(p, img);
    } catch (const cv::Exception&) {
    }
    if (!written) continue;  // this OpenCV does not write the format (its reader is then not tested here)
    ++checked;
    EXPECT_NE(thrown_message([&] { read_image(p, cap); }).find("over the limit"), std::string::npos) << ext;
    ReadLimits exact;
    exact.max_pixels = 100 * 120;
    EXPECT_EQ(read_image(p, exact).size(), cv::Size(120, 100)) << ext;
  }
  EXPECT_GE(checked, 9) << "png, jpg, bmp, tif, webp, pgm, ppm, pbm, pfm at least";
  // Hostile headers: a few bytes claiming 30000 x 30000 (900 M pixels).
  std::vector<unsigned char> tiff = {'I', 'I', 42, 0, 8, 0, 0, 0, 2, 0,
                                     0, 1, 4, 0, 1, 0, 0, 0, 0x30, 0x75, 0, 0,   // ImageWidth LONG 30000
                                     1, 1, 3, 0, 1, 0, 0, 0, 0x30, 0x75, 0, 0,   // ImageLength SHORT 30000
                                     0, 0, 0, 0};
  tiff.resize(857, 0);
  std::vector<unsigned char> webp = {'R', 'I', 'F', 'F', 22, 0, 0, 0, 'W', 'E', 'B', 'P', 'V', 'P', '8', 'X', 10, 0, 0, 0,
                                     0, 0, 0, 0, 0x2F, 0x75, 0, 0x2F, 0x75, 0};  // canvas 30000 x 30000
  const std::string pgm_text = "P5\n# hostile\n30000 30000\n255\n";
  const std::vector<unsigned char> pgm(pgm_text.begin(), pgm_text.end());
  for (const auto& [name, bytes] : std::vector<std::pair<std::string, std::vector<unsigned char>>>{
           {"huge.tif", tiff}, {"huge.webp", webp}, {"huge.pgm", pgm}}) {
    write_bytes(path(name), bytes);
    const std::string m = thrown_message([&] { read_image(path(name)); });
    EXPECT_NE(m.find("30000x30000"), std::string::npos) << name << ": " << m;
    EXPECT_NE(m.find("over the limit"), std::string::npos) << name << ": " << m;
  }
  // A format no probe reads (GIF) is refused before decoding, with what to do.
  const std::string gif_text = "GIF89a\x10\x00\x10\x00";
  write_bytes(path("a.gif"), std::vector<unsigned char>(gif_text.begin(), gif_text.end()));
  EXPECT_NE(thrown_message([&] { read_image(path("a.gif")); }).find("re-export it as PNG"), std::string::npos);
}

TEST_F(TempDir, WriteImagesIsAllOrNone) {
  const cv::Mat a = random_image(10, 10, CV_8UC3, 1), b = random_image(10, 10, CV_8UC3, 2);
  write_images({path("a.png"), path("b.png")}, {a, b});
  EXPECT_EQ(cv::norm(read_image(path("b.png")), b, cv::NORM_INF), 0.0);
  // The second target is a folder: its rename fails, so the first is not left either.
  fs::create_directories(path("d.png"));
  EXPECT_THROW(write_images({path("c.png"), path("d.png")}, {a, b}), std::runtime_error);
  EXPECT_FALSE(fs::exists(path("c.png")));
  // A bad image: nothing is written, no temporary is left.
  EXPECT_THROW(write_images({path("e.png"), path("f.png")}, {a, cv::Mat()}), dsk::edit::InputError);
  EXPECT_FALSE(fs::exists(path("e.png")));
  for (const auto& e : fs::directory_iterator(dir_))
    EXPECT_EQ(e.path().filename().string().find(".tmp-"), std::string::npos) << e.path();
}

TEST_F(TempDir, FloatTiffIsConvertedToSixteenBit) {
  cv::Mat f(8, 8, CV_32FC3);
  for (int y = 0; y < 8; ++y)
    for (int x = 0; x < 8; ++x) f.at<cv::Vec3f>(y, x) = {static_cast<float>(x) / 7.f, static_cast<float>(y) / 7.f, 1.5f};  // 1.5 clamps to 1
  const std::string p = path("float.tiff");
  // Uncompressed: OpenCV's default for 32FC3 TIFF is lossy SGILOG.
  ASSERT_TRUE(cv::imwrite(p, f, {cv::IMWRITE_TIFF_COMPRESSION, 1}));
  const cv::Mat img = read_image(p);
  ASSERT_EQ(img.type(), CV_16UC3);
  EXPECT_EQ(img.at<cv::Vec3w>(0, 7)[0], 65535);
  EXPECT_EQ(img.at<cv::Vec3w>(7, 0)[1], 65535);
  EXPECT_EQ(img.at<cv::Vec3w>(3, 3)[2], 65535);
  EXPECT_EQ(img.at<cv::Vec3w>(0, 0)[0], 0);
}

// A JPEG whose EXIF says "rotate 90 degrees" (orientation 6) must come back unrotated.
TEST_F(TempDir, ExifOrientationIsNotApplied) {
  cv::Mat img(40, 80, CV_8UC3, cv::Scalar(30, 60, 90));
  std::vector<unsigned char> jpg;
  cv::imencode(".jpg", img, jpg);
  const std::vector<unsigned char> app1 = {
      0xFF, 0xE1, 0x00, 0x22, 'E', 'x', 'i', 'f', 0, 0,           // APP1, length 34, "Exif\0\0"
      'M', 'M', 0x00, 0x2A, 0x00, 0x00, 0x00, 0x08,               // big-endian TIFF, IFD at 8
      0x00, 0x01,                                                 // one entry
      0x01, 0x12, 0x00, 0x03, 0x00, 0x00, 0x00, 0x01, 0x00, 0x06, 0x00, 0x00,  // Orientation = 6
      0x00, 0x00, 0x00, 0x00};                                    // no next IFD
  jpg.insert(jpg.begin() + 2, app1.begin(), app1.end());
  const std::string p = path("rot.jpg");
  write_bytes(p, jpg);
  // Sanity: OpenCV's default read applies it, so the test can tell the difference.
  EXPECT_EQ(cv::imread(p, cv::IMREAD_COLOR).size(), cv::Size(40, 80));
  EXPECT_EQ(read_image(p).size(), cv::Size(80, 40));
}

TEST(ImageFloat, RoundTripIsExactForEightAndSixteenBit) {
  for (int depth : {CV_8U, CV_16U}) {
    for (int cn : {1, 3, 4}) {
      const cv::Mat img = random_image(21, 17, CV_MAKETYPE(depth, cn), 11 + cn);
      const FloatImage f = to_float_rgb(img);
      ASSERT_EQ(f.rgb.type(), CV_32FC3);
      ASSERT_EQ(f.alpha.type(), CV_32FC1);
      const cv::Mat back = from_float_rgb(f.rgb, f.alpha, depth, cn);
      if (cn == 1) {
        // gray -> RGB replicate -> luma: the weights sum to 1, so it comes back exactly.
        EXPECT_TRUE(identical(back, img));
      } else {
        EXPECT_TRUE(identical(back, img)) << "depth " << depth << " channels " << cn;
      }
    }
  }
}

TEST(ImageFloat, ChannelOrderIsRgbAndAlphaDefaultsToOne) {
  cv::Mat bgr(1, 1, CV_8UC3, cv::Scalar(255, 0, 0));  // pure blue in OpenCV's BGR
  const FloatImage f = to_float_rgb(bgr);
  const cv::Vec3f px = f.rgb.at<cv::Vec3f>(0, 0);
  EXPECT_FLOAT_EQ(px[0], 0.f);
  EXPECT_FLOAT_EQ(px[2], 1.f);
  EXPECT_FLOAT_EQ(f.alpha.at<float>(0, 0), 1.f);
  const cv::Mat bgra = from_float_rgb(f.rgb, cv::Mat(), CV_16U, 4);
  EXPECT_EQ(bgra.at<cv::Vec4w>(0, 0), cv::Vec4w(65535, 0, 0, 65535));
}

TEST(ImageFloat, FromFloatClampsAndValidates) {
  cv::Mat rgb(1, 2, CV_32FC3);
  rgb.at<cv::Vec3f>(0, 0) = {-1.f, 2.f, 0.5f};
  rgb.at<cv::Vec3f>(0, 1) = {0.f, 0.f, 0.f};
  const cv::Mat out = from_float_rgb(rgb, cv::Mat(), CV_8U, 3);
  EXPECT_EQ(out.at<cv::Vec3b>(0, 0), cv::Vec3b(128, 255, 0));
  EXPECT_THROW(from_float_rgb(cv::Mat(2, 2, CV_8UC3), cv::Mat(), CV_8U, 3), dsk::edit::InputError);
  EXPECT_THROW(from_float_rgb(rgb, cv::Mat(), CV_8U, 2), dsk::edit::InputError);
  EXPECT_THROW(from_float_rgb(rgb, cv::Mat(), CV_16S, 3), dsk::edit::InputError);
}

TEST(ImageFloat, LumaMatchesOpenCv) {
  const cv::Mat img = random_image(5, 5, CV_8UC3, 5);
  cv::Mat ref;
  cv::cvtColor(img, ref, cv::COLOR_BGR2GRAY);
  const cv::Mat l = to_luma(img);
  for (int y = 0; y < 5; ++y)
    for (int x = 0; x < 5; ++x) EXPECT_NEAR(l.at<float>(y, x) * 255.f, ref.at<uchar>(y, x), 0.51);
}

// One list of picture extensions for every folder the commands read (training, fine-tuning,
// sketch features, evaluation).
TEST(ImageIo, PictureFilesAreKnownByTheirExtensionInAnyCase) {
  for (const char* name : {"a.png", "dir/b.JPG", "c.jpeg", "d.Webp", "e.tif", "f.TIFF", "g.bmp", "h.pgm", "i.ppm", "j.pbm",
                           "k.jp2"})
    EXPECT_TRUE(is_image_path(name)) << name;
  for (const char* name : {"a.txt", "b.png.part", "c", ".png", "model.json", "weights.safetensors"})
    EXPECT_FALSE(is_image_path(name)) << name;
}
