// keras-csp on-device benchmark app. The native library (src/main/cpp) is the same benchmark core,
// runner and kernels as the desktop `kcsp_bench`; LiteRT comes from its Maven artifact, whose
// libLiteRt.so the runner opens with dlopen at run time.
val litertVersion = "2.3.0"   // the runtime's tested LiteRT range is 2.3.x (kernels/runtime/litert_lib.h)

plugins {
    id("com.android.application")
    id("org.jetbrains.kotlin.android")
}

android {
    namespace = "dev.kerascsp.demo"
    compileSdk = 35
    ndkVersion = "27.2.12479018"

    defaultConfig {
        applicationId = "dev.kerascsp.demo"
        minSdk = 26
        targetSdk = 35
        versionCode = 1
        versionName = "0.1.0"
        buildConfigField("String", "LITERT_VERSION", "\"$litertVersion\"")
        ndk { abiFilters += listOf("arm64-v8a") }
        externalNativeBuild {
            cmake {
                cppFlags += listOf("-std=c++17", "-O3")
                arguments += listOf("-DANDROID_STL=c++_shared")
            }
        }
    }
    buildFeatures { buildConfig = true }
    buildTypes {
        release {
            isMinifyEnabled = false
            proguardFiles(getDefaultProguardFile("proguard-android-optimize.txt"), "proguard-rules.pro")
        }
    }
    externalNativeBuild {
        cmake {
            path = file("src/main/cpp/CMakeLists.txt")
            version = "3.22.1"
        }
    }
    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }
    kotlinOptions { jvmTarget = "17" }
    // .tflite assets must stay uncompressed so they can be copied/mapped as they are.
    androidResources { noCompress += "tflite" }
    packaging { jniLibs { useLegacyPackaging = true } }
}

dependencies {
    implementation("com.google.ai.edge.litert:litert:$litertVersion")
    testImplementation("junit:junit:4.13.2")
}
