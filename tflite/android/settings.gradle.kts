// keras-hrf Android demo: live speech emotion recognition with an int8 model exported by
// `keras-hrf export` / `keras-hrf demo`. See README.md.
pluginManagement {
    repositories {
        google()
        mavenCentral()
        gradlePluginPortal()
    }
}

dependencyResolutionManagement {
    repositoriesMode.set(RepositoriesMode.FAIL_ON_PROJECT_REPOS)
    repositories {
        google()
        mavenCentral()
    }
}

rootProject.name = "keras-hrf-ser"

// core: pure Kotlin/JVM (front-end, quantization, streaming, smoothing), tested in CI without
// Android. app: the Android shell (microphone, LiteRT, UI).
include(":core", ":app")
