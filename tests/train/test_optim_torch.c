// test_optim_torch.c — train/optim against PyTorch on the same numbers: torch.optim.AdamW
// (decoupled decay, eps outside the sqrt, bias corrections of the step count),
// torch.nn.utils.clip_grad_norm_ (the norm over all parameters, clip / (norm + 1e-6)) and
// diffusers' EMAModel (decay 0 at the first update, then (1 + u) / (10 + u) capped), six steps
// with one clipped, the state saved and loaded into a fresh optimizer halfway (the step count and
// the average's count carry over a resume). The table: tests/train/optim_torch_ref.py.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "testutil.h"
#include "autograd/autograd.h"
#include "train/optim.h"

static const double TORCH_NORM[6] = {0.968565464, 0.9544608, 30.7811146, 0.96350795, 0.961081207, 0.923009217};
static const double TORCH_VAL[6][6][12] = {
    {{0.083139509, 0.0637730137, 0.0344216898, -0.000941902399, -0.0175314695, -0.0503947735, -0.0750839338, -0.0882573798, -0.108132131, -0.0947251916, -0.0698510855, -0.0368764102},
     {-0.0198941994, -0.055172395, -0.064336732, -0.0834399238},
     {-0.108432882, -0.0879401416, -0.0741916671, -0.0490482375},
     {0.083139509, 0.0637730137, 0.0344216898, -0.000941902399, -0.0175314695, -0.0503947735, -0.0750839338, -0.0882573798, -0.108132131, -0.0947251916, -0.0698510855, -0.0368764102},
     {-0.0198941994, -0.055172395, -0.064336732, -0.0834399238},
     {-0.108432882, -0.0879401416, -0.0741916671, -0.0490482375}},
    {{0.0631929412, 0.0441763215, 0.0202507935, 0.00568260718, 0.00103686005, -0.0302873868, -0.0571140163, -0.0826537982, -0.123060472, -0.114346609, -0.089132838, -0.0506296828},
     {-0.0373693183, -0.0590935424, -0.0484634638, -0.0633960664},
     {-0.0985597521, -0.0687180907, -0.0541162491, -0.0319191851},
     {0.0668195933, 0.0477393568, 0.0228273198, 0.00447815098, -0.00233920012, -0.0339432731, -0.0603812747, -0.0836726278, -0.120346226, -0.110779077, -0.0856270641, -0.0481290892},
     {-0.0341920257, -0.0583806075, -0.0513495132, -0.0670404062},
     {-0.100354865, -0.072213009, -0.0577663258, -0.0350335576}},
    {{0.0335207693, 0.0290159509, 0.0273549762, 0.0263043493, 0.0296639502, -0.00506142341, -0.0543223619, -0.0973301455, -0.148079976, -0.143426254, -0.103306033, -0.0428966209},
     {-0.0385489389, -0.0432221666, -0.0224569608, -0.0339846872},
     {-0.0761815012, -0.0392969623, -0.0312771499, -0.0323348418},
     {0.0418454744, 0.0336968005, 0.0262230616, 0.0208477993, 0.0216631629, -0.0122818854, -0.0558370911, -0.093915768, -0.141146541, -0.135264456, -0.0988862887, -0.044204738},
     {-0.0374597088, -0.0470117778, -0.0296800993, -0.0422486179},
     {-0.0822248459, -0.0475259721, -0.037899442, -0.0330095217}},
    {{0.0226300471, 0.0293964241, 0.0365427807, 0.0401144065, 0.0434877314, 0.000286528375, -0.0597702935, -0.109192409, -0.162463009, -0.153749257, -0.1023928, -0.0334139578},
     {-0.032406576, -0.0308134016, -0.00773225725, -0.0238589533},
     {-0.0618110597, -0.0259734541, -0.0275977738, -0.0390204601},
     {0.0285424851, 0.0307196174, 0.0333674811, 0.0341862217, 0.0367724821, -0.00358067546, -0.0585600771, -0.104491904, -0.155904099, -0.148061633, -0.101313874, -0.0367341973},
     {-0.0339613855, -0.0357975177, -0.0144854393, -0.0295173116},
     {-0.068092227, -0.0326049998, -0.0307675172, -0.0371709391}},
    {{0.0218975842, 0.0319292657, 0.0409322977, 0.0442993343, 0.0456606597, -0.000741072115, -0.0634864643, -0.113650531, -0.165704563, -0.154225469, -0.099660486, -0.0289357286},
     {-0.0284915883, -0.0262329075, -0.00444489997, -0.0234041847},
     {-0.0577070788, -0.024144534, -0.0290718861, -0.0430009812},
     {0.0242707636, 0.0314972475, 0.0382305756, 0.0406875089, 0.04248631, -0.00175521616, -0.0617270395, -0.110379592, -0.1622044, -0.152024105, -0.100250982, -0.0317208953},
     {-0.0304450877, -0.0296488404, -0.0080308076, -0.0255874433},
     {-0.0614160597, -0.0271661282, -0.0296774693, -0.0409188233}},
    {{0.0223678797, 0.0328424089, 0.0417247266, 0.0446642786, 0.0454630964, -0.0015096101, -0.064387165, -0.114208832, -0.165736645, -0.153652236, -0.0986776426, -0.0281163417},
     {-0.0275542196, -0.0256306734, -0.00436149817, -0.0239250828},
     {-0.0573637225, -0.0243964382, -0.0298881009, -0.0438867174},
     {0.0231290329, 0.0323043428, 0.0403270647, 0.0430735722, 0.0442723818, -0.00160785252, -0.0633231178, -0.112677135, -0.164323747, -0.153000981, -0.0993069783, -0.0295581631},
     {-0.0287105665, -0.0272379406, -0.00582922157, -0.0245900266},
     {-0.0589846559, -0.0255043134, -0.0298038479, -0.0426995605}},
};

static const double LRS[6] = {0.01, 0.02, 0.03, 0.02, 0.01, 0.005};
static const double SCALES[6] = {0.3, 0.3, 10.0, 0.3, 0.3, 0.3};  // step 2 is clipped

// image_proj.w [3, 4], .b [4], .scale [4]: f32 on the CPU, each its own master
static void make_params(cm_params *a) {
    params_init_registry(a, CM_DEV_CPU, CM_F32, true);
    params_new(a, "image_proj", "w", SHAPE(3, 4), CM_INIT_NORMAL);
    params_new(a, "image_proj", "b", SHAPE(4), CM_INIT_NORMAL);
    params_new(a, "image_proj", "scale", SHAPE(4), CM_INIT_NORMAL);
    for (int i = 0; i < 3; i++) {
        float *p = tensor_data(a->items[i].t);
        for (int64_t j = 0; j < tensor_numel(a->items[i].t); j++) p[j] = (float)(0.1 * cos(0.37 * (double)(j + 1) + 1.3 * i));
    }
}

static void set_grads(cm_params *a, int k) {
    for (int i = 0; i < 3; i++) {
        cm_tensor *p = a->items[i].t;
        int64_t n = tensor_numel(p);
        float g[12];  // [n]
        for (int64_t j = 0; j < n; j++) g[j] = (float)(SCALES[k] * sin(0.7 * (double)(j + 1) + 1.1 * i + k));
        tensor_release(p->grad);
        p->grad = tensor_from_host(CM_F32, p->ndim, p->shape, g, CM_DEV_CPU);
    }
}

static optim_config torch_config(void) {
    optim_config oc = optim_config_default();  // betas 0.9 / 0.999, eps 1e-8
    oc.weight_decay = 0.1, oc.grad_clip = 1.5, oc.ema_decay = 0.75, oc.ema_warmup = true;
    return oc;
}

int main(void) {
    char err[512], path[64];
    snprintf(path, sizeof path, "/tmp/cameo-test-optim-torch-%d.safetensors", (int)getpid());
    cm_params a;
    make_params(&a);
    cm_params *regs[1] = {&a};
    optim_config oc = torch_config();
    optim o;
    TEST_CHECK(optim_init(&o, regs, 1, &oc, 0, -1, err, sizeof err) == 0, "%s", err);
    for (int k = 0; k < 6; k++) {
        if (k == 3) {  // a resume: state saved, the parameters spoilt, a fresh optimizer loads it
            TEST_CHECK(optim_save(&o, path, err, sizeof err) == 0, "save: %s", err);
            optim_free(&o);
            for (int i = 0; i < 3; i++) memset(tensor_data(a.items[i].t), 0, (size_t)tensor_nbytes(a.items[i].t));
            TEST_CHECK(optim_init(&o, regs, 1, &oc, 0, -1, err, sizeof err) == 0, "%s", err);
            TEST_CHECK(optim_load(&o, path, err, sizeof err) == 0 && o.step == 3 && o.ema_updates == 3, "load: %s", err);
        }
        set_grads(&a, k);
        optim_step_info info;
        TEST_CHECK(optim_step(&o, LRS[k], &info) == 0, "step %d applied", k);
        TEST_NEAR(info.grad_norm, TORCH_NORM[k], 0, 1e-6, "clip_grad_norm_'s total norm");
        double worst_p = 0, worst_e = 0;  // |cameo - torch| of the weights, of their averages
        for (int i = 0; i < 3; i++)
            for (int64_t j = 0; j < o.slot[i].n; j++) {
                worst_p = test_max(worst_p, fabs(((float *)tensor_data(a.items[i].t))[j] - TORCH_VAL[k][i][j]));
                worst_e = test_max(worst_e, fabs(((float *)tensor_data(o.slot[i].ema))[j] - TORCH_VAL[k][3 + i][j]));
            }
        // f32 arithmetic on values below 0.2: a few roundings apart
        TEST_CHECK(worst_p <= 5e-8, "step %d: the weights %.3g from torch.optim.AdamW's", k, worst_p);
        TEST_CHECK(worst_e <= 5e-8, "step %d: the average %.3g from diffusers' EMAModel's", k, worst_e);
    }
    optim_free(&o);
    params_free(&a);
    unlink(path);
    return test_summary("test_optim_torch");
}
