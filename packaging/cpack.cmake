# The Debian package: `./dsk package` (packaging/package.sh) configures a build with the prefix
# /usr and runs `cpack -G DEB`, giving diffsketch_<version>_amd64.deb. Runtime dependencies come
# from dpkg-shlibdeps over the installed binaries (LibTorch, OpenCV, libgimp, GLib, ...), not from a
# hand list; GIMP itself is added since the plug-in is useless without it.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME diffsketch)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_VENDOR "DiffSketch")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "sketch-guided diffusion inpainting for GIMP 3")
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION "sketch-guided diffusion inpainting for GIMP 3
 DiffSketch repaints a selection (or synthesises a picture) so that it follows a sketch drawn on a
 layer, with a diffusion model that runs on the CPU (LibTorch). It adds Filters > DiffSketch to
 GIMP 3 (Sketch Inpaint, Sketch to Image, Interpolate Seeds), the diffsketch command line for
 editing, batch work, training and model management, and a default model.")
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "DiffSketch developers <maintainers@diffsketch.invalid>")  # no public list yet
set(CPACK_DEBIAN_PACKAGE_SECTION graphics)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)  # diffsketch_<version>_<arch>.deb
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "gimp (>= 3.0)")  # shlibdeps' list is appended
# Edits are several times slower on the reference BLAS (diffsketch doctor says so).
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "libopenblas0-pthread")
# DESTDIR staging with the real prefix, so that files written at install time (the plug-in's
# engine-path) name /usr/bin/diffsketch, not the staging folder.
set(CPACK_SET_DESTDIR ON)
set(CPACK_INSTALL_PREFIX /usr)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_OUTPUT_FILE_PREFIX ${CMAKE_BINARY_DIR}/packages)
include(CPack)
